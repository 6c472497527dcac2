public import Foundation

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Credentials in a JSON file readable only by its owner (mode 0600).
///
/// Every save writes a new file next to the old one and renames it over it, so a reader (another
/// process, or this one after a crash) sees the old credentials or the new ones, never a mix.
public struct FileCredentialStore: CredentialStore {
    /// The file.
    public let url: URL

    /// Creates a store in the file at `url`; its directory is created on the first save.
    public init(url: URL) {
        self.url = url
    }

    public func load() throws -> TesseraCredentials? {
        let data: Data
        do {
            data = try Data(contentsOf: self.url)
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile {
            return nil
        }
        return try JSONDecoder().decode(TesseraCredentials.self, from: data)
    }

    public func save(_ credentials: TesseraCredentials) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(credentials)
        let directory = self.url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = directory.appendingPathComponent(".\(self.url.lastPathComponent).\(UUID().uuidString).tmp").path
        // Created with mode 0600 (and set again, whatever the umask), so the tokens are never
        // readable by others, not even for a moment.
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Self.posixError("open") }
        var closed = false
        defer {
            if !closed { close(descriptor) }
        }
        do {
            guard fchmod(descriptor, 0o600) == 0 else { throw Self.posixError("fchmod") }
            try data.withUnsafeBytes { buffer in
                guard let base = buffer.baseAddress else { return }
                var offset = 0
                while offset < buffer.count {
                    let written = write(descriptor, base + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw Self.posixError("write")
                    }
                    offset += written
                }
            }
            guard fsync(descriptor) == 0 else { throw Self.posixError("fsync") }
            closed = true
            guard close(descriptor) == 0 else { throw Self.posixError("close") }
            guard rename(temporary, self.url.path) == 0 else { throw Self.posixError("rename") }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    public func clear() throws {
        guard unlink(self.url.path) == 0 || errno == ENOENT else { throw Self.posixError("unlink") }
    }

    private static func posixError(_ operation: String) -> any Error {
        let code = errno
        return NSError(
            domain: NSPOSIXErrorDomain,
            code: Int(code),
            userInfo: [NSLocalizedDescriptionKey: "\(operation): \(String(cString: strerror(code)))"]
        )
    }
}
