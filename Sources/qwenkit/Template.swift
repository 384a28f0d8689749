import ArgumentParser
import Foundation
import QwenKit

struct Template: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a conversation exactly as the chat template renders it.",
        discussion: "The messages file holds an OpenAI-style array of messages; the tools file an array of function definitions.")

    @Option(name: [.short, .customLong("model")], help: "Take the template from this model (default: the default model).")
    var model: String?
    @Option(help: "A Jinja template file to use instead of a model's.") var template: String?
    @Option(help: "JSON file with the messages.") var messages: String
    @Option(help: "JSON file with the tools.") var tools: String?
    @Flag(help: "Do not append the assistant's turn header.") var noGenerationPrompt = false
    @Option(help: "Set enable_thinking (true or false); default: leave it undefined.") var enableThinking: Bool?

    func validate() throws {
        if model != nil && template != nil { throw ValidationError("give either --model or --template, not both") }
    }

    func run() throws {
        let renderer: ChatTemplateRenderer
        if let template {
            renderer = try ChatTemplateRenderer(template: try readText(template, what: "template"))
        } else {
            var options = try ModelOptions.parse(model.map { ["-m", $0] } ?? [])
            options.context = 1
            renderer = try options.load().chatTemplateRenderer()
        }
        let messageValues = try JSONValue.parse(try readText(messages, what: "messages"))
        guard let list = messageValues.arrayValue else { throw CLIError("\(messages): expected a JSON array of messages") }
        var toolList: [JSONValue]?
        if let tools {
            guard let array = try JSONValue.parse(try readText(tools, what: "tools")).arrayValue else {
                throw CLIError("\(tools): expected a JSON array of tools")
            }
            toolList = array
        }
        var context: [String: JSONValue] = ["bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"]
        if let enableThinking { context["enable_thinking"] = .bool(enableThinking) }
        write(try renderer.render(messageObjects: list, tools: toolList, addGenerationPrompt: !noGenerationPrompt,
                                  extraContext: context))
    }

    private func readText(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read the \(what) file '\(path)'") }
        return String(decoding: data, as: UTF8.self)
    }
}
