#if canImport(Security)
    import Foundation
    import Security

    /// Credentials in the Keychain (Apple platforms), as one generic-password item holding their JSON.
    ///
    /// The item is accessible after the first unlock and never leaves the device, so a refresh can
    /// run while the device is locked and a backup restored elsewhere holds no tokens.
    public struct KeychainCredentialStore: CredentialStore {
        /// The item's service (`kSecAttrService`), such as the app's bundle identifier.
        public let service: String
        /// The item's account (`kSecAttrAccount`).
        public let account: String
        /// The access group to share the item with app extensions, if any.
        public let accessGroup: String?

        /// Creates a store for the item `service`/`account`.
        public init(service: String, account: String = "tessera-credentials", accessGroup: String? = nil) {
            self.service = service
            self.account = account
            self.accessGroup = accessGroup
        }

        /// The Keychain answered with an error.
        public struct KeychainError: Error, Sendable {
            /// The `OSStatus` the Keychain returned (see `SecCopyErrorMessageString`).
            public let status: Int32
        }

        private var query: [String: Any] {
            var query: [String: Any] = [
                kSecClass as String: kSecClassGenericPassword,
                kSecAttrService as String: self.service,
                kSecAttrAccount as String: self.account,
            ]
            if let accessGroup = self.accessGroup {
                query[kSecAttrAccessGroup as String] = accessGroup
            }
            return query
        }

        public func load() throws -> TesseraCredentials? {
            var query = self.query
            query[kSecReturnData as String] = true
            query[kSecMatchLimit as String] = kSecMatchLimitOne
            var result: AnyObject?
            let status = SecItemCopyMatching(query as CFDictionary, &result)
            if status == errSecItemNotFound { return nil }
            guard status == errSecSuccess, let data = result as? Data else { throw KeychainError(status: status) }
            return try JSONDecoder().decode(TesseraCredentials.self, from: data)
        }

        public func save(_ credentials: TesseraCredentials) throws {
            let data = try JSONEncoder().encode(credentials)
            let attributes: [String: Any] = [
                kSecValueData as String: data,
                kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
            ]
            // Update in place (one atomic Keychain operation); add only when there is no item yet.
            var status = SecItemUpdate(self.query as CFDictionary, attributes as CFDictionary)
            if status == errSecItemNotFound {
                status = SecItemAdd(self.query.merging(attributes) { $1 } as CFDictionary, nil)
            }
            guard status == errSecSuccess else { throw KeychainError(status: status) }
        }

        public func clear() throws {
            let status = SecItemDelete(self.query as CFDictionary)
            guard status == errSecSuccess || status == errSecItemNotFound else { throw KeychainError(status: status) }
        }
    }
#endif
