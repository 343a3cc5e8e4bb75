/// Host arrays in and out of a backend, with NaN around what is written, so that a kernel that
/// reads outside its slice, or leaves an output element unwritten, shows in the results. Used
/// by `BackendCheck` and the backends' tests.
extension Backend {
    /// A new buffer holding `values` at `offset`, with NaN in the `offset` elements before them
    /// and the `trailing` elements after.
    public func buffer(_ values: [Float], offset: Int = 0, trailing: Int = 3) throws -> BufferSlice<Buffer> {
        let total = try hostArrayTotal(offset, values.count, trailing, "buffer")
        let buffer = try makeBuffer(count: total)
        try poison(buffer, count: total)
        let slice = BufferSlice(buffer, offset: offset)
        try values.withUnsafeBufferPointer { try upload($0, to: slice) }
        return slice
    }

    /// `count` NaNs at `offset`: an operation writing there must overwrite every one.
    public func poisoned(_ count: Int, offset: Int = 0) throws -> BufferSlice<Buffer> {
        guard count >= 0 else {
            throw BackendError.invalidArgument(operation: "poisoned", reason: "negative count \(count)")
        }
        // the buffer first, so that a count too large for it throws before a host array of it is made
        let total = try hostArrayTotal(offset, count, 3, "poisoned")
        let buffer = try makeBuffer(count: total)
        try poison(buffer, count: total)
        return BufferSlice(buffer, offset: offset)
    }

    /// `count` elements read back from `slice`.
    public func read(_ slice: BufferSlice<Buffer>, _ count: Int) throws -> [Float] {
        guard count >= 0 else {
            throw BackendError.invalidArgument(operation: "read", reason: "negative count \(count)")
        }
        guard count <= Self.maximumBufferCount else {
            throw BackendError.invalidArgument(operation: "read", reason: "\(count) elements do not fit in host memory")
        }
        // a million elements at a time, so that a count past the buffer's end fails at the first
        // piece it does not hold instead of asking the host for the whole count first
        let piece = 1 << 20
        var values = [Float]()
        values.reserveCapacity(min(count, piece))
        var done = 0
        repeat {
            let length = min(piece, count - done)
            values.append(contentsOf: repeatElement(0, count: length))
            try values.withUnsafeMutableBufferPointer { all in
                try download(slice.advanced(by: done), count: length, into: UnsafeMutableBufferPointer(rebasing: all[done...]))
            }
            done += length
        } while done < count
        return values
    }

    /// offset + count + trailing elements, or an error for a negative part or a total that overflows.
    private func hostArrayTotal(_ offset: Int, _ count: Int, _ trailing: Int, _ operation: String) throws -> Int {
        guard offset >= 0, trailing >= 0 else {
            throw BackendError.invalidArgument(operation: operation, reason: "negative offset \(offset) or trailing \(trailing)")
        }
        let (head, overflow1) = offset.addingReportingOverflow(count)
        let (total, overflow2) = head.addingReportingOverflow(trailing)
        guard !overflow1, !overflow2 else {
            throw BackendError.invalidArgument(
                operation: operation, reason: "offset \(offset) + \(count) elements + \(trailing) trailing overflows")
        }
        return total
    }

    /// Fills `buffer`'s `count` elements with NaN.
    private func poison(_ buffer: Buffer, count: Int) throws {
        let poison = [Float](repeating: .nan, count: count)
        try poison.withUnsafeBufferPointer { try upload($0, to: BufferSlice(buffer)) }
    }
}
