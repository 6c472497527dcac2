import Synchronization

/// What an express path did: the requests it answered, and the ones it took and then handed
/// to the router.
final class ExpressCounts: Sendable {
    private let answered = Atomic<Int>(0)
    private let declined = Atomic<Int>(0)
    var answeredCount: Int { self.answered.load(ordering: .relaxed) }
    var declinedCount: Int { self.declined.load(ordering: .relaxed) }

    func countAnswered() { self.answered.add(1, ordering: .relaxed) }
    func countDeclined() { self.declined.add(1, ordering: .relaxed) }
}
