extension Sequence {
    /// `map` with an asynchronous transform, one element after the other.
    public func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}

/// Runs `body`, then `cleanup`, whether `body` returned or threw: the asynchronous `defer` that
/// fixtures and test-scheduling gates need.
public func running<Value>(_ body: () async throws -> Value, afterwards cleanup: () async -> Void) async throws -> Value {
    let value: Value
    do {
        value = try await body()
    } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    return value
}
