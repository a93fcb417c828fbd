// A tool loop from Swift: the model may call `get_weather`; `Weather` runs
// it and Nexus sends the result back until the model answers. Build the
// facade with `cargo build -p nexus-ffi --release` and add
// crates/nexus-ffi/generated/swift to your target.
import Foundation

final class Weather: ToolHandler {
    func call(name: String, argumentsJson: String) -> ToolOutput {
        guard name == "get_weather",
              let data = argumentsJson.data(using: .utf8),
              let args = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let city = args["city"] as? String
        else {
            return ToolOutput(content: "unknown tool or arguments", isError: true)
        }
        // A real app would call a weather service here.
        return ToolOutput(content: "22C and sunny in \(city)", isError: false)
    }
}

@main
struct ToolLoop {
    static func main() async throws {
        let client = try Client(options: ClientOptions(home: nil, env: [:]), vault: nil)
        let weather = ToolSpec(
            name: "get_weather",
            description: "Today's weather in a city",
            inputSchemaJson: #"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#
        )
        let run = try await client.runTools(
            model: "anthropic/claude-haiku-4-5",
            prompt: "Should I take an umbrella in Paris today?",
            options: ChatOptions(tools: [weather]),
            handler: Weather(),
            maxRounds: 8
        )
        print(run.reply.text)
    }
}
