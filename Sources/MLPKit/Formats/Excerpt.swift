/// Text from a file (a CSV cell, a header name, a checkpoint's metadata value) made safe to quote
/// in a one-line message; the command line also escapes every error line with it.
public enum Excerpt {
    /// The most characters (Unicode scalars) of file content a message quotes.
    public static let limit = 40

    /// `text` with control characters escaped (see ``escapeControls(_:)``), cut after `limit` characters with "…".
    public static func escape(_ text: String, limit: Int = Excerpt.limit) -> String {
        var shown = String.UnicodeScalarView()
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit { return escapeControls(String(shown)) + "…" }
            shown.append(scalar)
            count += 1
        }
        return escapeControls(String(shown))
    }

    /// The bytes decoded as UTF-8 (invalid sequences become U+FFFD), escaped and cut as ``escape(_:limit:)``.
    /// Decodes only the first bytes it may show, so a huge cell costs nothing.
    static func escape(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int = Excerpt.limit) -> String {
        // `limit + 1` scalars take at most 4 bytes each: enough to show `limit` and know there are more.
        let prefix = UnsafeBufferPointer(rebasing: bytes.prefix(4 * (limit + 1)))
        return escape(String(decoding: prefix, as: UTF8.self), limit: limit)
    }

    /// Whether `scalar` must not appear raw in a one-line message: C0 controls, DEL, C1 controls, and the
    /// Unicode line and paragraph separators.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7F...0x9F).contains(value) || value == 0x2028 || value == 0x2029
    }

    /// `text` with control characters written as `\0`, `\t`, `\n`, `\r` or `\u{1b}`; other text unchanged.
    public static func escapeControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var escaped = ""
        for scalar in text.unicodeScalars {
            guard isControl(scalar) else {
                escaped.unicodeScalars.append(scalar)
                continue
            }
            switch scalar.value {
            case 0: escaped += "\\0"
            case 0x09: escaped += "\\t"
            case 0x0A: escaped += "\\n"
            case 0x0D: escaped += "\\r"
            default: escaped += "\\u{\(String(scalar.value, radix: 16))}"
            }
        }
        return escaped
    }
}
