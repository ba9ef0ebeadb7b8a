import DPOTestSupport
import Foundation
import XCTest
@testable import ChatTemplates
@testable import DPOSupport

/// The chat-template renderer against transformers' own renders (Fixtures/chat_templates/cases.json,
/// made by tools/make_chat_template_fixtures.py): real model templates and one-feature snippets must
/// come out byte-equal; what transformers refuses with raise_exception must throw that message.
final class ChatTemplateTests: XCTestCase {
    private static let fixtureDirectory = Fixtures.root + "/chat_templates"
    private static let sharedTokenizers = Fixtures.sharedTokenizers

    private struct Case {
        var template: String
        var templateText: String?
        var conversation: String
        var messages: [ChatMessage]
        var addGenerationPrompt: Bool
        var variables: [String: Any]
        var bosToken: String?
        var eosToken: String?
        var now: Date
        var expected: String?
        var expectedError: String?
        var label: String { "\(template) / \(conversation) / generation prompt \(addGenerationPrompt)" }
    }

    private func loadCases() throws -> [Case] {
        let text = try String(contentsOfFile: Self.fixtureDirectory + "/cases.json", encoding: .utf8)
        // The order-preserving parser, so `tools | tojson` sees the keys in the order Python had them.
        guard case .array(let items)? = try ChatTemplateValue(json: text)["cases"] else {
            throw DPOError("cases.json: no \"cases\" array")
        }
        return try items.map { item in
            func string(_ key: String) -> String? { if case .string(let value)? = item[key] { return value } else { return nil } }
            guard let template = string("template"), case .array(let messages)? = item["messages"],
                  case .bool(let addGenerationPrompt)? = item["add_generation_prompt"],
                  case .object(let variables)? = item["variables"], let now = string("now") else {
                throw DPOError("cases.json: malformed case \(item)")
            }
            return Case(
                template: template, templateText: string("template_text"), conversation: string("conversation") ?? "",
                messages: try messages.map { message in
                    guard case .string(let role)? = message["role"], case .string(let content)? = message["content"] else {
                        throw DPOError("cases.json: malformed message \(message)")
                    }
                    return ChatMessage(role: role, content: content)
                },
                addGenerationPrompt: addGenerationPrompt,
                variables: Dictionary(uniqueKeysWithValues: variables.map { ($0.key, $0.value as Any) }),
                bosToken: string("bos_token"), eosToken: string("eos_token"), now: try Self.localDate(now),
                expected: string("expected"), expectedError: string("expected_error"))
        }
    }

    /// "2025-03-07T09:05:30" as a wall-clock time in the local time zone, like Python's naive `datetime.now()`.
    private static func localDate(_ text: String) throws -> Date {
        let numbers = text.split(whereSeparator: { "-T:".contains($0) }).compactMap { Int($0) }
        guard numbers.count == 6 else { throw DPOError("cases.json: bad date \(text)") }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        let components = DateComponents(year: numbers[0], month: numbers[1], day: numbers[2],
                                        hour: numbers[3], minute: numbers[4], second: numbers[5])
        guard let date = calendar.date(from: components) else { throw DPOError("cases.json: bad date \(text)") }
        return date
    }

    /// The template text and a source name for errors: inline snippet, committed .jinja, or shared tokenizer.
    private func templateText(for testCase: Case) throws -> (text: String, source: String)? {
        if let text = testCase.templateText { return (text, testCase.template) }
        if testCase.template.hasPrefix("shared:") {
            let parts = testCase.template.split(separator: ":").map(String.init)
            let path = Self.sharedTokenizers + "/\(parts[1])/tokenizer_config.json"
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
            if let text = config?["chat_template"] as? String { return (text, path) }
            if let named = config?["chat_template"] as? [[String: Any]], parts.count == 3,
               let text = named.first(where: { $0["name"] as? String == parts[2] })?["template"] as? String {
                return (text, path)
            }
            throw DPOError("\(path): no chat template \(testCase.template)")
        }
        let path = Self.fixtureDirectory + "/templates/\(testCase.template).jinja"
        return (try String(contentsOfFile: path, encoding: .utf8), path)
    }

    /// Where two renders first differ, in UTF-8 bytes, with a little context from each.
    private func difference(_ actual: String, _ expected: String) -> String? {
        let (a, b) = (Array(actual.utf8), Array(expected.utf8))
        guard a != b else { return nil }
        let position = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
        func excerpt(_ bytes: [UInt8]) -> String {
            let slice = bytes[max(0, position - 40)..<min(bytes.count, position + 40)]
            return String(decoding: slice, as: UTF8.self).debugDescription
        }
        return "first difference at byte \(position) (lengths \(a.count) vs \(b.count)):\n  got      \(excerpt(a))\n  expected \(excerpt(b))"
    }

    func testRendersLikeTransformers() throws {
        let cases = try loadCases()
        XCTAssertGreaterThan(cases.count, 200)
        var templates: [String: ChatTemplate] = [:]
        var passed: [String: Int] = [:]
        var skippedShared = Set<String>()
        for testCase in cases {
            guard let (text, source) = try templateText(for: testCase) else {
                skippedShared.insert(testCase.template)
                continue
            }
            let template: ChatTemplate
            if let cached = templates[testCase.template] {
                template = cached
            } else {
                do {
                    template = try ChatTemplate(text, source: source)
                } catch {
                    XCTFail("\(testCase.template): does not parse: \(error)")
                    continue
                }
                templates[testCase.template] = template
            }
            do {
                let rendered = try template.render(messages: testCase.messages, addGenerationPrompt: testCase.addGenerationPrompt,
                                                   bosToken: testCase.bosToken, eosToken: testCase.eosToken,
                                                   variables: testCase.variables, now: testCase.now)
                if let expectedError = testCase.expectedError {
                    XCTFail("\(testCase.label): rendered, but transformers raised \"\(expectedError)\"")
                } else if let expected = testCase.expected, let difference = difference(rendered, expected) {
                    XCTFail("\(testCase.label): \(difference)")
                } else {
                    passed[testCase.template, default: 0] += 1
                }
            } catch let error as DPOError {
                if let expectedError = testCase.expectedError, error.message.hasSuffix(": " + expectedError),
                   error.message.contains("raised an exception") {
                    passed[testCase.template, default: 0] += 1
                } else {
                    XCTFail("\(testCase.label): \(error.message)")
                }
            }
        }
        let models = passed.filter { !$0.key.hasPrefix("snippet:") }.sorted { $0.key < $1.key }
        print("chat templates byte-equal to transformers: " + models.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
              + "; snippets \(passed.filter { $0.key.hasPrefix("snippet:") }.values.reduce(0, +))")
        if !skippedShared.isEmpty {
            print("skipped (no ../shared/tokenizers here): \(skippedShared.sorted().joined(separator: ", "))")
        }
    }

    // MARK: Refusals and errors

    private func assertThrows(_ template: String, contains fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                              render: Bool = false) {
        do {
            let parsed = try ChatTemplate(template, source: "tokenizer_config.json")
            if !render { XCTFail("parsed, expected an error containing \(fragments)", file: file, line: line); return }
            _ = try parsed.render(messages: [ChatMessage(role: "user", content: "hi")], addGenerationPrompt: false,
                                  bosToken: nil, eosToken: nil)
            XCTFail("rendered, expected an error containing \(fragments)", file: file, line: line)
        } catch let error as DPOError {
            for fragment in fragments where !error.message.contains(fragment) {
                XCTFail("error \"\(error.message)\" does not contain \"\(fragment)\"", file: file, line: line)
            }
        } catch {
            XCTFail("not a DPOError: \(error)", file: file, line: line)
        }
    }

    func testUnsupportedConstructsAreNamedAtParseTime() {
        assertThrows("{% for m in messages %}\n{{ m.content }}\n{{ m.content | foo }}{% endfor %}",
                     contains: ["tokenizer_config.json: chat template uses unsupported filter \"foo\" (line 3)"])
        assertThrows("{{ x is frobnicated }}", contains: ["unsupported test \"frobnicated\" (line 1)"])
        assertThrows("a\n{% include 'other.jinja' %}", contains: ["unsupported tag \"include\" (line 2)"])
        assertThrows("{% call foo() %}x{% endcall %}", contains: ["unsupported tag \"call\""])
        assertThrows("{% for x in xs recursive %}{% endfor %}", contains: ["unsupported recursive for loop"])
        assertThrows("{{ f(*args) }}", contains: ["unsupported *args/**kwargs"])
        assertThrows("{{ x|escape }}", contains: ["unsupported filter \"escape\""])
    }

    func testUnsupportedConstructsAreNamedAtRenderTime() {
        assertThrows("{{ 'a {}'.format(1) }}", contains: ["unsupported string method .format()"], render: true)
        assertThrows("{{ '%s' % 1 }}", contains: ["unsupported printf-style"], render: true)
        assertThrows("{{ cycler(1, 2) }}", contains: ["unsupported global function \"cycler\""], render: true)
        assertThrows("{{ strftime_now('%c') }}", contains: ["unsupported strftime format \"%c\""], render: true)
        assertThrows("{{ messages.append(1) }}", contains: ["list method 'append' is not allowed"], render: true)
    }

    func testSyntaxErrorsNameTheLine() {
        assertThrows("{% if x %}\nno end", contains: ["chat template syntax error", "expected 'elif' or 'else' or 'endif'"])
        assertThrows("ok\n{{ 1 + }}", contains: ["syntax error", "(line 2)"])
        assertThrows("{% frobnicate %}", contains: ["unknown tag 'frobnicate'"])
        assertThrows("{% break %}", contains: ["'break' outside of a loop"])
        assertThrows("{# never closed", contains: ["missing end of comment tag"])
    }

    func testRaiseExceptionSurfacesItsMessage() {
        assertThrows("{% if messages[0].role != 'system' %}{{ raise_exception('Conversations must start with a system message') }}{% endif %}",
                     contains: ["tokenizer_config.json", "Conversations must start with a system message"], render: true)
    }

    func testRuntimeErrorsLikeJinja() {
        assertThrows("line one\n{{ missing.attribute }}", contains: ["'missing' is undefined", "(line 2)"], render: true)
        assertThrows("{{ 'a' + 1 }}", contains: ["can only concatenate str (not \"int\") to str"], render: true)
        assertThrows("{{ missing + 1 }}", contains: ["'missing' is undefined"], render: true)
        assertThrows("{{ missing() }}", contains: ["'missing' is undefined"], render: true)
        assertThrows("{{ missing|tojson }}", contains: ["not JSON serializable"], render: true)
        assertThrows("{% set x = 1 %}{% set x.y = 2 %}", contains: ["cannot assign attribute on non-namespace object"], render: true)
    }

    func testVariablesFromSwift() throws {
        let template = try ChatTemplate(
            "{{ flag }} {{ count + 1 }} {{ ratio }} {{ names|join(',') }} {{ tools|tojson }} {{ nothing is none }} {{ bos_token is defined }} {{ data|tojson }}",
            source: "test")
        let rendered = try template.render(
            messages: [], addGenerationPrompt: true, bosToken: nil, eosToken: "</s>",
            variables: ["flag": true, "count": 41, "ratio": 0.5, "names": ["a", "b"],
                        "tools": [["name": "f", "description": "d"]], "nothing": Optional<Int>.none as Any,
                        "data": try ChatTemplateValue(json: #"{"z": 1, "a": [true, null, 2.5, "é"]}"#)])
        XCTAssertEqual(rendered, #"True 42 0.5 a,b [{"description": "d", "name": "f"}] True False {"z": 1, "a": [true, null, 2.5, "é"]}"#)
        XCTAssertThrowsError(try template.render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil,
                                                 variables: ["flag": Date()])) { error in
            XCTAssertTrue((error as? DPOError)?.message.contains("variable \"flag\"") ?? false, "\(error)")
        }
    }

    func testStrftimeNowUsesTheGivenDate() throws {
        let template = try ChatTemplate("{{ strftime_now('%d %b %Y') }}", source: "test")
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        let date = calendar.date(from: DateComponents(year: 2024, month: 7, day: 26, hour: 23, minute: 59))!
        XCTAssertEqual(try template.render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil, now: date),
                       "26 Jul 2024")
    }

    func testOrderedJSON() throws {
        let value = try ChatTemplateValue(json: #" {"b": [1, -2.5e3, "x\u00e9\ud83d\ude00\n"], "a": {}, "c": null, "d": false} "#)
        XCTAssertEqual(value, .object([.init("b", .array([.int(1), .double(-2500), .string("xé😀\n")])),
                                       .init("a", .object([])), .init("c", .null), .init("d", .bool(false))]))
        XCTAssertThrowsError(try ChatTemplateValue(json: "[1, 2"))
        XCTAssertThrowsError(try ChatTemplateValue(json: "{\"a\": 1} x"))
    }
}
