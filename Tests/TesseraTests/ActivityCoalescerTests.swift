import Foundation
import Testing

@testable import Tessera

@Suite struct ActivityCoalescerTests {
    @Test func manySessionsActiveInOneWindowEachClaimOnceAndExpiredClaimsAreDropped() {
        let coalescer = ActivityCoalescer(granularity: .seconds(60), pruneThreshold: 100)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let stored = start.addingTimeInterval(-120)
        // 5,000 sessions in one window, well past the prune threshold: every one claims once.
        for index in 0..<5000 {
            #expect(coalescer.claim(sessionID: "s\(index)", storedLastSeen: stored, now: start) == start)
        }
        #expect(coalescer.count == 5000)
        for index in stride(from: 0, to: 5000, by: 97) {
            #expect(coalescer.claim(sessionID: "s\(index)", storedLastSeen: stored, now: start.addingTimeInterval(30)) == nil)
            #expect(coalescer.pendingActivity(sessionID: "s\(index)", now: start.addingTimeInterval(30)) == start)
        }
        // A window later, the old claims go at the next pruning, which comes after the count
        // has doubled past what the last pruning kept.
        let later = start.addingTimeInterval(61)
        for index in 0..<10_001 {
            _ = coalescer.claim(sessionID: "t\(index)", storedLastSeen: stored, now: later)
        }
        #expect(coalescer.count <= 10_001)
        #expect(coalescer.pendingActivity(sessionID: "s0", now: later) == nil)
    }
}
