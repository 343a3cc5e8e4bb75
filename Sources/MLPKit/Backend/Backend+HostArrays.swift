/// Host arrays in and out of a backend, with NaN around what is written, so that a kernel that
/// reads outside its slice, or leaves an output element unwritten, shows in the results. Used
/// by `BackendCheck` and the backends' tests.
extension Backend {
    /// A new buffer holding `values` at `offset`, with NaN in the `offset` elements before them
    /// and the `trailing` elements after.
    public func buffer(_ values: [Float], offset: Int = 0, trailing: Int = 3) throws -> BufferSlice<Buffer> {
        let total = offset + values.count + trailing
        let buffer = try makeBuffer(count: total)
        let poison = [Float](repeating: .nan, count: total)
        try poison.withUnsafeBufferPointer { try upload($0, to: BufferSlice(buffer)) }
        let slice = BufferSlice(buffer, offset: offset)
        try values.withUnsafeBufferPointer { try upload($0, to: slice) }
        return slice
    }

    /// `count` NaNs at `offset`: an operation writing there must overwrite every one.
    public func poisoned(_ count: Int, offset: Int = 0) throws -> BufferSlice<Buffer> {
        try buffer([Float](repeating: .nan, count: count), offset: offset)
    }

    /// `count` elements read back from `slice`.
    public func read(_ slice: BufferSlice<Buffer>, _ count: Int) throws -> [Float] {
        var values = [Float](repeating: 0, count: count)
        try values.withUnsafeMutableBufferPointer { try download(slice, count: count, into: $0) }
        return values
    }
}
