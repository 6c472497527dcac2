#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// libFuzzer's driver, linked from `libclang_rt.fuzzer_no_main` (see `scripts/fuzz.sh`): a SwiftPM
// executable's `main` is renamed, which would clash with libFuzzer's own `main`, so the fuzzers
// call the driver themselves.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

nonisolated(unsafe) private var fuzzBody: ((UnsafeBufferPointer<UInt8>) -> Void)?

/// Runs libFuzzer with the process's arguments, calling `body` with every input, and exits
/// with its status. A property `body` finds broken is reported with ``require(_:_:)``.
public func runFuzzer(_ body: @escaping (UnsafeBufferPointer<UInt8>) -> Void) -> Never {
    fuzzBody = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        // An empty input comes as a null pointer; the code under test expects a buffer.
        if let data {
            fuzzBody!(UnsafeBufferPointer(start: data, count: size))
        } else {
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1) { fuzzBody!(UnsafeBufferPointer(rebasing: $0[0..<0])) }
        }
        return 0
    }
    exit(status)
}

/// Stops the process (libFuzzer then saves the input as `crash-…`) when a property fails,
/// with the property's description on standard error.
@inline(__always)
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        fail(message(), file: file, line: line)
    }
}

@inline(never)
public func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    var text = "\n==== PROPERTY FAILED (\(file):\(line)): \(message)\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    abort()
}

/// A short, printable rendering of bytes for failure messages.
public func show(_ bytes: some Sequence<UInt8>, limit: Int = 300) -> String {
    var text = ""
    for (index, byte) in bytes.enumerated() {
        if index == limit {
            text += "…"
            break
        }
        switch byte {
        case 0x20...0x7E where byte != UInt8(ascii: "\\"): text.unicodeScalars.append(Unicode.Scalar(byte))
        case UInt8(ascii: "\\"): text += "\\\\"
        default: text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }
    }
    return "\"" + text + "\""
}

/// Reads an input as several fields: the fuzzers split an input on a separator byte when a
/// function takes more than one argument.
public func split(_ bytes: UnsafeBufferPointer<UInt8>, on separator: UInt8, maxPieces: Int) -> [ArraySlice<UInt8>] {
    Array(bytes).split(separator: separator, maxSplits: maxPieces - 1, omittingEmptySubsequences: false)
}
