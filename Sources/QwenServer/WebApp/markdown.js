// A small Markdown renderer for untrusted text (the model's output, the user's input).
//
// It builds DOM nodes with createElement and textContent only: no string of the input is ever
// parsed as HTML, so `<script>`, `<img onerror=…>` and the like are shown as the characters they
// are. Links are made only for absolute http(s) URLs, and open with rel="noopener noreferrer";
// anything else written as a link (javascript:, data:, relative paths) stays visible as text.
// Images are never loaded: `![alt](url)` becomes a link to the image.
//
// Supported: paragraphs, ATX headings, fenced code blocks (with a copy button), indented lists
// (bulleted and numbered, nested by indentation), block quotes, horizontal rules; inline code,
// strong, emphasis, strikethrough, links, autolinks. An unclosed code fence (a streamed answer
// mid-block) renders as code to the end of the text.

/** Renders `text` as the children of `target`, replacing what was there. */
export function renderMarkdown(text, target) {
    target.replaceChildren(...renderBlocks(text.replace(/\r\n?/g, "\n").split("\n")));
}

/** The URL when it is an absolute http(s) URL, else null. */
export function safeLinkURL(raw) {
    let url;
    try {
        url = new URL(raw);
    } catch {
        return null;
    }
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
}

function element(tag, text) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    return node;
}

// MARK: - Blocks

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])\s+(.*)$/;

function startsBlock(line) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

/** Block nodes for `lines`. */
function renderBlocks(lines) {
    const nodes = [];
    let i = 0;
    while (i < lines.length) {
        const line = lines[i];
        if (line.trim() === "") {
            i += 1;
            continue;
        }
        let match;
        if ((match = FENCE.exec(line))) {
            const fence = match[1];
            const body = [];
            let closed = false;
            i += 1;
            while (i < lines.length) {
                const closing = lines[i].trim();
                if (closing.startsWith(fence[0].repeat(fence.length)) && /^(`+|~+)$/.test(closing)) {
                    closed = true;
                    i += 1;
                    break;
                }
                body.push(lines[i]);
                i += 1;
            }
            // Still open (a streamed answer mid-block): the line being written may be empty.
            if (!closed && body.at(-1) === "") body.pop();
            nodes.push(codeBlock(body.join("\n"), match[2]));
        } else if (RULE.test(line)) {
            nodes.push(element("hr"));
            i += 1;
        } else if ((match = HEADING.exec(line))) {
            const heading = element(`h${Math.min(match[1].length + 2, 6)}`);
            heading.dir = "auto";
            heading.append(...renderInline(match[2] ?? ""));
            nodes.push(heading);
            i += 1;
        } else if (QUOTE.test(line)) {
            const body = [];
            while (i < lines.length && lines[i].trim() !== "" && (match = QUOTE.exec(lines[i]) ?? [null, lines[i]])) {
                body.push(match[1]);
                i += 1;
            }
            const quote = element("blockquote");
            quote.dir = "auto";
            quote.append(...renderBlocks(body));
            nodes.push(quote);
        } else if (ITEM.test(line)) {
            i = renderList(lines, i, nodes);
        } else {
            const body = [];
            while (i < lines.length && lines[i].trim() !== "" && (body.length === 0 || !startsBlock(lines[i]))) {
                body.push(lines[i].trim());
                i += 1;
            }
            nodes.push(paragraph(body.join("\n")));
        }
    }
    return nodes;
}

function paragraph(text) {
    const p = element("p");
    p.dir = "auto";
    p.append(...renderInline(text));
    return p;
}

/** Renders the list starting at `lines[start]` into `nodes`; returns the index after it. */
function renderList(lines, start, nodes) {
    const first = ITEM.exec(lines[start]);
    const ordered = /\d/.test(first[2]);
    const list = element(ordered ? "ol" : "ul");
    list.dir = "auto";
    if (ordered) {
        const number = parseInt(first[2], 10);
        if (number !== 1) list.start = number;
    }
    let i = start;
    let tight = true;
    const items = [];
    while (i < lines.length) {
        const match = ITEM.exec(lines[i]);
        if (!match || /\d/.test(match[2]) !== ordered) break;
        // Continuation lines are indented past the marker; a blank line followed by an
        // unindented line ends the list.
        const indent = match[1].length + match[2].length + 1;
        const body = [match[3]];
        i += 1;
        while (i < lines.length) {
            const line = lines[i];
            if (line.trim() === "") {
                const next = lines[i + 1];
                if (next !== undefined && /^\s+\S/.test(next) && !ITEM.test(next)) {
                    body.push("");
                    tight = false;
                    i += 1;
                    continue;
                }
                // A blank line between two items of this list makes it loose (items as paragraphs).
                const nextItem = next === undefined ? null : ITEM.exec(next);
                if (nextItem && nextItem[1].length === match[1].length && /\d/.test(nextItem[2]) === ordered) tight = false;
                break;
            }
            if (ITEM.test(line) && ITEM.exec(line)[1].length <= match[1].length) break;
            if (/^\s/.test(line)) {
                body.push(line.replace(new RegExp(`^ {0,${Math.max(indent, 2)}}`), ""));
            } else if (startsBlock(line)) {
                break;
            } else {
                body.push(line);  // a lazy continuation of the item's paragraph
            }
            i += 1;
        }
        items.push(body);
        if (i < lines.length && lines[i].trim() === "") i += 1;
    }
    for (const body of items) {
        const item = element("li");
        item.dir = "auto";
        const blocks = renderBlocks(body);
        if (tight && blocks[0]?.tagName === "P") {
            item.append(...blocks[0].childNodes, ...blocks.slice(1));
        } else {
            item.append(...blocks);
        }
        list.append(item);
    }
    nodes.push(list);
    return i;
}

/** A code block with its language and a copy button. */
function codeBlock(code, language) {
    const figure = element("figure");
    figure.className = "code";
    const bar = element("div");
    bar.className = "code-bar";
    const name = element("span", language || "text");
    name.className = "code-language";
    const copy = element("button", "Copy");
    copy.type = "button";
    copy.className = "copy";
    copy.setAttribute("aria-label", `Copy ${language || "text"} code`);
    copy.addEventListener("click", () => copyText(code, copy));
    bar.append(name, copy);
    const pre = element("pre");
    pre.dir = "ltr";
    pre.tabIndex = 0;  // scrollable by keyboard
    const codeNode = element("code", code);
    if (language) codeNode.dataset.language = language;
    pre.append(codeNode);
    figure.append(bar, pre);
    return figure;
}

async function copyText(text, button) {
    let copied = false;
    try {
        await navigator.clipboard.writeText(text);
        copied = true;
    } catch {
        // No clipboard API outside a secure context (e.g. http:// on a LAN address): copy through
        // a selected, off-screen text area instead.
        const area = element("textarea");
        area.value = text;
        area.className = "offscreen";
        area.setAttribute("aria-hidden", "true");
        document.body.append(area);
        area.select();
        copied = document.execCommand("copy");
        area.remove();
    }
    button.textContent = copied ? "Copied" : "Copy failed";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

// MARK: - Inline

// One alternative per construct, tried leftmost first. Group numbers are used below.
const INLINE = new RegExp([
    /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/.source,                          // 1, 2: code span
    /(!?)\[([^\]\n]*)\]\(\s*<?([^\s<>]*?)>?(?:\s+"[^"\n]*")?\s*\)/.source, // 3, 4, 5: link or image
    /<(https?:\/\/[^\s<>]+)>/.source,                                      // 6: autolink
    /(https?:\/\/[^\s<>]*[^\s<>.,;:!?'")\]*_~])/.source,                   // 7: bare URL
    /(\*\*|__)(?=\S)([\s\S]*?\S)\8(?!\w)/.source,                          // 8, 9: strong
    /(?<![\w*])\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)/.source,               // 10: emphasis with *
    /(?<!\w)_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)/.source,                    // 11: emphasis with _
    /~~(?=\S)([\s\S]*?\S)~~/.source,                                       // 12: strikethrough
].join("|"), "g");

/** Inline nodes for `text`. */
function renderInline(text) {
    const nodes = [];
    let last = 0;
    INLINE.lastIndex = 0;
    for (const match of text.matchAll(INLINE)) {
        if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
        last = match.index + match[0].length;
        nodes.push(inlineNode(match));
    }
    if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
    return nodes;
}

function inlineNode(match) {
    if (match[1] !== undefined) return element("code", match[2]);
    if (match[4] !== undefined) {
        const url = safeLinkURL(match[5]);
        if (url === null) return document.createTextNode(match[0]);
        const isImage = match[3] === "!";
        const label = match[4] || (isImage ? "image" : match[5]);
        return link(url, isImage ? [document.createTextNode(`[image: ${label}]`)] : renderInline(label));
    }
    if (match[6] !== undefined || match[7] !== undefined) {
        const raw = match[6] ?? match[7];
        const url = safeLinkURL(raw);
        return url === null ? document.createTextNode(match[0]) : link(url, [document.createTextNode(raw)]);
    }
    const [tag, inner] = match[9] !== undefined ? ["strong", match[9]]
        : match[10] !== undefined ? ["em", match[10]]
        : match[11] !== undefined ? ["em", match[11]]
        : ["del", match[12]];
    const node = element(tag);
    node.append(...renderInline(inner));
    return node;
}

function link(url, children) {
    const a = element("a");
    a.href = url;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    a.append(...children);
    return a;
}
