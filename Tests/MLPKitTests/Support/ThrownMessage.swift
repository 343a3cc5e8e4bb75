import XCTest

/// What `body` throws, as its description, or "no error" when it returns.
func thrownMessage(_ body: () throws -> Any) -> String {
    do {
        _ = try body()
        return "no error"
    } catch {
        return String(describing: error)
    }
}
