import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A page parsed as XML (Foundation's XMLParser, libxml2): every element with its attributes and the
/// `data-metric` of the figure around it. A page that is not well-formed is an error saying where.
public struct MarkupElements {
    public struct Element {
        public let name: String
        public let attributes: [String: String]
        /// `data-metric` of the nearest enclosing element that has one.
        public let metric: String?
        /// Text directly inside the element.
        public var text = ""
    }

    public private(set) var elements: [Element] = []

    public init(_ text: String) throws {
        let parser = XMLParser(data: Data(text.utf8))
        let collector = Collector()
        parser.delegate = collector
        guard parser.parse() else {
            throw TestSetupError("not well-formed at line \(parser.lineNumber), column \(parser.columnNumber): \(parser.parserError.map { "\($0)" } ?? "?")")
        }
        elements = collector.elements
    }

    public func all(_ name: String, metric: String? = nil) -> [Element] {
        elements.filter { $0.name == name && (metric == nil || $0.metric == metric) }
    }

    private final class Collector: NSObject, XMLParserDelegate {
        var elements: [Element] = []
        var open: [Int] = []
        var metrics: [String?] = []

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            let metric = attributes["data-metric"] ?? metrics.last ?? nil
            metrics.append(metric)
            open.append(elements.count)
            elements.append(Element(name: name, attributes: attributes, metric: metric))
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            open.removeLast()
            metrics.removeLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if let i = open.last { elements[i].text += string }
        }
    }
}
