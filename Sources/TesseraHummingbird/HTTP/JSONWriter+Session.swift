package import Foundation
package import NIOCore
package import Tessera

extension JSONWriter {
    /// What was written, as a response body.
    package var buffer: ByteBuffer {
        ByteBuffer(bytes: self.bytes)
    }

    /// A session as ``SessionBody`` encodes it.
    package mutating func session(_ session: Session, current: Bool? = nil) {
        self.beginObject()
        self.key("absoluteExpiresAt")
        self.date(session.absoluteExpiresAt)
        self.key("createdAt")
        self.date(session.createdAt)
        if let current {
            self.key("current")
            self.bool(current)
        }
        self.key("data")
        self.object(session.data)
        self.key("dataVersion")
        self.integer(session.dataVersion)
        self.key("id")
        self.string(session.id)
        self.key("idleExpiresAt")
        self.date(session.idleExpiresAt)
        self.key("lastSeenAt")
        self.date(session.lastSeenAt)
        self.key("metadata")
        self.beginObject()
        if let ipAddress = session.metadata.ipAddress {
            self.key("ipAddress")
            self.string(ipAddress)
        }
        if let label = session.metadata.label {
            self.key("label")
            self.string(label)
        }
        if let userAgent = session.metadata.userAgent {
            self.key("userAgent")
            self.string(userAgent)
        }
        self.endObject()
        self.key("userId")
        self.string(session.userID)
        self.endObject()
    }
}
