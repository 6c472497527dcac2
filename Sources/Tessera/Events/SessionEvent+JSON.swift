public import Foundation

extension SessionEvent {
    /// The event as JSON, the same in a webhook's body and a stream's `data:` line:
    ///
    /// ```json
    /// {"id":"evt_01JD…","sequence":42,"type":"session.revoked","timestamp":"2026-12-01T19:00:00.123Z",
    ///  "data":{"sessionId":"ses_…","userId":"usr_…","reason":"logout","node":"web-1"}}
    /// ```
    ///
    /// The envelope (`type`, `timestamp`, `data`) is the one Standard Webhooks recommends.
    public var json: [UInt8] {
        var writer = JSONWriter(capacity: 256)
        writer.beginObject()
        writer.key("id")
        writer.string(self.id)
        writer.key("sequence")
        writer.integer(Int(self.sequence))
        writer.key("type")
        writer.string(self.kind.rawValue)
        writer.key("timestamp")
        writer.date(self.time)
        writer.key("data")
        writer.beginObject()
        if let sessionID = self.sessionID {
            writer.key("sessionId")
            writer.string(sessionID)
        }
        writer.key("userId")
        writer.string(self.userID)
        if let reason = self.reason {
            writer.key("reason")
            writer.string(reason)
        }
        writer.key("node")
        writer.string(self.node)
        if let dataVersion = self.dataVersion {
            writer.key("dataVersion")
            writer.integer(dataVersion)
        }
        if let count = self.count {
            writer.key("count")
            writer.integer(count)
        }
        if let expiredAt = self.expiredAt {
            writer.key("expiredAt")
            writer.date(expiredAt)
        }
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }
}
