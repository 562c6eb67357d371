"""Reading rendered pages in tests: the text of an element by id, the cells
of a table by its aria-label, the links in a fragment (standard library
only)."""

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)


@dataclass
class Element:
    tag: str
    attrs: dict
    children: list = field(default_factory=list)  # Elements and strings

    def text(self) -> str:
        """The element's text, whitespace collapsed; child elements are
        separated by a space (a "sub" line reads as its own words)."""
        parts = []

        def walk(node):
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    parts.append(" ")
                    walk(child)
                    parts.append(" ")

        walk(self)
        return " ".join("".join(parts).split())

    def iter(self, tag: str | None = None):
        for child in self.children:
            if isinstance(child, Element):
                if tag is None or child.tag == tag:
                    yield child
                yield from child.iter(tag)

    def find(self, tag: str | None = None, **attrs) -> "Element | None":
        for element in self.iter(tag):
            if all(element.attrs.get(key) == value for key, value in attrs.items()):
                return element
        return None


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {key: value or "" for key, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def element_text(html: str, element_id: str) -> str:
    element = parse(html).find(id=element_id)
    assert element is not None, f"no element #{element_id}"
    return element.text()


def table_rows(html: str, label: str) -> list[list[str]]:
    """The body and footer rows of the table with aria-label `label`: each
    row's cell texts."""
    table = parse(html).find("table", **{"aria-label": label})
    assert table is not None, f"no table “{label}”"
    rows = []
    for row in table.iter("tr"):
        cells = [cell.text() for cell in row.iter("td")]
        if cells:
            rows.append(cells)
    return rows


def links(html: str, element_id: str | None = None) -> list[str]:
    """The hrefs of the links on the page (or inside one element)."""
    root = parse(html)
    if element_id is not None:
        root = root.find(id=element_id)
        assert root is not None, f"no element #{element_id}"
    return [a.attrs.get("href", "") for a in root.iter("a")]
