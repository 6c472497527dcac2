import Foundation
import NIOHTTP1
import Testing
import TesseraTestSupport

/// The `tessera` command's own output and settings, tried as a hostile user (and a hurried
/// operator) would.
@Suite(.heavy) struct HostileCommandTests {
    @Test func controlAndBidiCharactersCannotForgeRowsOfTheSessionList() async throws {
        let server = try await HostileServer()
        let forged = [
            ("eve\nses_FORGED  admin", "plain"), ("mallory\r", "carriage\rreturn"), ("trudy", "\u{1B}[31mred\u{1B}[0m"),
            ("oscar", "abc\u{202E}fed"), ("peggy\u{2028}", "zero\u{200B}width"),
        ]
        for (subject, label) in forged {
            let encodedSubject = subject.unicodeScalars.map { $0.value < 0x20 || $0.value > 0x7E ? String(format: "\\u%04x", $0.value) : String($0) }
                .joined()
            let encodedLabel = label.unicodeScalars.map { $0.value < 0x20 || $0.value > 0x7E ? String(format: "\\u%04x", $0.value) : String($0) }
                .joined()
            let created = try await server.createSession(subject: encodedSubject, extra: #","label":"\#(encodedLabel)""#)
            #expect(created.reply.status == 201, "\(created.reply.body)")
        }
        let listed = try ServerProcess.run(["sessions", "list", "--data-dir", server.dataDirectory], environment: HostileServer.environment)
        #expect(listed.status == 0)
        let lines = listed.output.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        // The header and one row per session: nothing split a row or made one up.
        #expect(lines.count == 1 + forged.count, "\(listed.output)")
        #expect(!listed.output.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x0D || $0.value == 0x202E || $0.value == 0x2028 })
        #expect(!listed.output.unicodeScalars.contains { $0.value == 0x200B })
        #expect(listed.output.contains(#"eve\nses_FORGED  admin"#))
        #expect(listed.output.contains(#"\u{1B}[31mred"#))
        #expect(listed.output.contains(#"abc\u{202E}fed"#))
        #expect(lines.filter { $0.hasPrefix("ses_") }.count == forged.count)
    }

    @Test func theFirstStartNamesTheServiceKeysFileButNeverPrintsTheKey() async throws {
        let server = try await HostileServer()
        #expect(server.serviceKey.hasPrefix("tsk_"))
        #expect(!server.output.contains(server.serviceKey))
        #expect(server.process.standardOutput.contains(server.dataDirectory + "/service-api-key"))
        let shown = try ServerProcess.run(["keys", "show-service-key", "--data-dir", server.dataDirectory])
        #expect(shown.status == 0)
        #expect(shown.output.trimmingCharacters(in: .whitespacesAndNewlines) == server.serviceKey)
    }

    @Test func aShortIdleTimeoutAloneStartsTheServiceAndConflictingValuesAreNamed() async throws {
        let server = try await HostileServer(arguments: ["--idle-timeout", "4s"])
        #expect(server.process.standardOutput.contains("idle timeout 4s"))
        #expect(server.process.standardOutput.contains("activity written at most every 1s"))
        #expect(try await server.stillServes())

        let directory = TemporaryDirectory()
        let conflicting = try ServerProcess.run(
            ["serve", "--data-dir", directory.path, "--port", "0", "--idle-timeout", "4s", "--activity-granularity", "5s"]
        )
        #expect(conflicting.status != 0)
        #expect(conflicting.output.contains("--activity-granularity (5s) must be shorter than --idle-timeout (4s)"), "\(conflicting.output)")
        let fromEnvironment = try ServerProcess.run(
            ["serve", "--data-dir", directory.path, "--port", "0", "--idle-timeout", "4s"],
            environment: ["TESSERA_ACTIVITY_GRANULARITY": "10s"]
        )
        #expect(fromEnvironment.status != 0)
        #expect(fromEnvironment.output.contains("TESSERA_ACTIVITY_GRANULARITY (10s) must be shorter than --idle-timeout (4s)"))
    }
}
