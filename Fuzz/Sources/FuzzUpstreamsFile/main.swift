// The upstreams file: UpstreamsFile.decode(_:json:source:), YAML (through Yams) and JSON.
//
// Every input is decoded both as YAML and as JSON. Properties: decode returns or throws an
// UpstreamConfigurationError, never traps; a file it returns is valid (every upstream passes
// validate(), names are unique), and encodes to JSON that decodes, as JSON, to an equal file.
// libFuzzer's -timeout reports an input that takes seconds. A returned file's durations are
// usable as the service uses them (finite, and `Int64(seconds * 1000)` representable).
import Foundation
import FuzzSupport

func checkUsable(_ file: UpstreamsFile, _ input: UnsafeBufferPointer<UInt8>) {
    for upstream in file.upstreams {
        let seconds: [(String, Double)] = [
            ("maxAge", upstream.maxAge), ("healthFreshness", upstream.healthFreshness), ("borrowTimeout", upstream.borrowTimeout),
            ("leaseTimeout", upstream.leaseTimeout), ("requestTimeout", upstream.requestTimeout),
            ("keepAlive.interval", upstream.keepAlive.interval), ("backoff.initial", upstream.backoff.initial),
            ("backoff.maximum", upstream.backoff.maximum), ("backoff.breakerOpen", upstream.backoff.breakerOpen),
        ]
        for (name, value) in seconds {
            // UpstreamPool: `.milliseconds(Int64(borrowTimeout * 1000))`; HTTPUpstreamSessionFactory:
            // `.milliseconds(Int64(requestTimeout * 1000))`; Serve: `Int(keepAlive.interval)`.
            require(
                value.isFinite && Int64(exactly: (value * 1000).rounded(.towardZero)) != nil,
                "upstream '\(upstream.name)': \(name) is \(value), which validate() accepts but the service cannot use"
            )
        }
    }
}

func decode(_ input: UnsafeBufferPointer<UInt8>, json: Bool) {
    let data = Data(input)
    let file: UpstreamsFile
    do {
        file = try UpstreamsFile.decode(data, json: json, source: "fuzz")
    } catch is UpstreamConfigurationError {
        return
    } catch {
        fail("decode(json: \(json)) threw \(type(of: error)), not an UpstreamConfigurationError: \(error)")
    }
    let names = file.upstreams.map(\.name)
    require(Set(names).count == names.count, "a decoded file has two upstreams of one name")
    for upstream in file.upstreams {
        do {
            try upstream.validate()
        } catch {
            fail("a decoded upstream does not validate: \(error)")
        }
    }
    checkUsable(file, input)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let encoded: Data
    do {
        encoded = try encoder.encode(file)
    } catch {
        // JSONEncoder refuses infinity and NaN, which validate() refuses too.
        fail("a decoded file does not encode: \(error)")
    }
    do {
        let again = try UpstreamsFile.decode(encoded, json: true, source: "re-encoded")
        require(again == file, "the file re-encoded as JSON decodes to another file: \(String(decoding: encoded, as: UTF8.self))")
    } catch {
        fail("the file re-encoded as JSON does not decode: \(error)\n\(String(decoding: encoded, as: UTF8.self))")
    }
}

runFuzzer { input in
    decode(input, json: false)
    decode(input, json: true)
}
