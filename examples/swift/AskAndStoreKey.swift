// Store a key in the Keychain, then ask through the model hierarchy.
//
// The Swift sources come from crates/nexus-ffi/generated/swift (uniffi); link
// the `nexus_ffi` static library built with
//   cargo build --release -p nexus-ffi --target aarch64-apple-ios
// The same program in Rust, Python and Node sits beside this one.

import Foundation
import Security
import NexusFFI

/// A Nexus vault in the iOS/macOS Keychain: Rust calls these methods.
final class KeychainVault: HostVault {
    private let service = "dev.nexus.sdk"

    private func query(_ name: String) -> [String: Any] {
        [kSecClass as String: kSecClassGenericPassword,
         kSecAttrService as String: service,
         kSecAttrAccount as String: name]
    }

    func get(name: String) throws -> String? {
        var q = query(name)
        q[kSecReturnData as String] = true
        var out: AnyObject?
        let status = SecItemCopyMatching(q as CFDictionary, &out)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess, let data = out as? Data else {
            throw NexusError.Vault(message: "Keychain read failed (\(status))")
        }
        return String(data: data, encoding: .utf8)
    }

    func set(name: String, value: String) throws {
        SecItemDelete(query(name) as CFDictionary)
        var q = query(name)
        q[kSecValueData as String] = Data(value.utf8)
        let status = SecItemAdd(q as CFDictionary, nil)
        guard status == errSecSuccess else {
            throw NexusError.Vault(message: "Keychain write failed (\(status))")
        }
    }

    func delete(name: String) throws -> Bool {
        SecItemDelete(query(name) as CFDictionary) == errSecSuccess
    }

    func list(prefix: String) throws -> [String] {
        let q: [String: Any] = [kSecClass as String: kSecClassGenericPassword,
                                kSecAttrService as String: service,
                                kSecReturnAttributes as String: true,
                                kSecMatchLimit as String: kSecMatchLimitAll]
        var out: AnyObject?
        guard SecItemCopyMatching(q as CFDictionary, &out) == errSecSuccess,
              let items = out as? [[String: Any]] else { return [] }
        return items.compactMap { $0[kSecAttrAccount as String] as? String }
            .filter { $0.hasPrefix(prefix) }.sorted()
    }
}

@main
struct AskAndStoreKey {
    static func main() async {
        let prompt = CommandLine.arguments.dropFirst().joined(separator: " ")
        do {
            let client = try Client(options: ClientOptions(home: nil, env: [:]), vault: KeychainVault())
            if let key = ProcessInfo.processInfo.environment["OPENAI_API_KEY"] {
                try client.vault().setKey(provider: "openai", key: key)
            }
            let answer = try await client.ask(
                prompt: prompt.isEmpty ? "Write a haiku about type systems" : prompt,
                options: AskOptions())
            for a in answer.attempts {
                FileHandle.standardError.write("[\(answer.category)] tier \(a.tier) \(a.model): \(a.outcome)\n".data(using: .utf8)!)
            }
            print(answer.reply.text)
        } catch NexusError.BudgetExceeded(let message) {
            print("over budget: \(message)")
        } catch NexusError.NoAcceptableAnswer(let message, let attempts) {
            for a in attempts { print("tier \(a.tier) \(a.model): \(a.outcome) \(a.reason ?? "")") }
            print("no answer: \(message)")
        } catch {
            print("error: \(error)")
        }
    }
}
