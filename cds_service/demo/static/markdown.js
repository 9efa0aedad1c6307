// Renders a card's detail (CDS Hooks: GitHub-flavoured Markdown) into DOM nodes: paragraphs,
// **bold**, *emphasis*, `code`, <https://...> and [text](https://...) links, bullet lists, tables
// and backslash escapes. Text only ever becomes text nodes and links only ever https or http hrefs:
// no HTML is parsed, so nothing a card says can become markup in the page.
"use strict";
window.renderMarkdown = (function () {
  const PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

  function element(tag, children) {
    const node = document.createElement(tag);
    node.append(...children);
    return node;
  }

  function link(href, children) {
    const a = element("a", children.length ? children : [href]);
    a.href = href;
    a.rel = "noopener";
    a.target = "_blank";
    return a;
  }

  function safeUrl(text) {
    return /^https?:\/\/[^\s<>"]+$/.test(text) ? text : null;
  }

  // One pass over the text, left to right: each construct is recognised where it starts, and what
  // is not a construct stays text. The result is a list of nodes and strings.
  function inline(text) {
    const out = [];
    let plain = "";
    const flush = () => { if (plain) { out.push(plain); plain = ""; } };
    let i = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === "\\" && i + 1 < text.length && PUNCTUATION.includes(text[i + 1])) {
        plain += text[i + 1];
        i += 2;
        continue;
      }
      if (c === "<") {
        const end = text.indexOf(">", i);
        const url = end > 0 ? safeUrl(text.slice(i + 1, end)) : null;
        if (url) { flush(); out.push(link(url, [])); i = end + 1; continue; }
      }
      if (c === "[") {
        const close = text.indexOf("](", i);
        const end = close > 0 ? text.indexOf(")", close) : -1;
        const url = end > 0 ? safeUrl(text.slice(close + 2, end)) : null;
        if (url) { flush(); out.push(link(url, inline(text.slice(i + 1, close)))); i = end + 1; continue; }
      }
      if (text.startsWith("**", i)) {
        const end = text.indexOf("**", i + 2);
        if (end > i + 2) { flush(); out.push(element("strong", inline(text.slice(i + 2, end)))); i = end + 2; continue; }
      }
      if (c === "*" && text[i + 1] !== "*") {
        const end = text.indexOf("*", i + 1);
        if (end > i + 1) { flush(); out.push(element("em", inline(text.slice(i + 1, end)))); i = end + 1; continue; }
      }
      if (c === "`") {
        const end = text.indexOf("`", i + 1);
        if (end > i) { flush(); out.push(element("code", [text.slice(i + 1, end)])); i = end + 1; continue; }
      }
      plain += c;
      i += 1;
    }
    flush();
    return out;
  }

  // A table row's cells, split on the pipes that are not escaped.
  function cells(line) {
    const row = line.trim().replace(/^\|/, "").replace(/(^|[^\\])\|$/, "$1");
    const found = [];
    let cell = "";
    for (let i = 0; i < row.length; i += 1) {
      if (row[i] === "\\" && row[i + 1] === "|") { cell += "\\|"; i += 1; continue; }
      if (row[i] === "|") { found.push(cell.trim()); cell = ""; continue; }
      cell += row[i];
    }
    found.push(cell.trim());
    return found;
  }

  const isRule = (line) => /^\s*\|[\s:|-]+\|\s*$/.test(line);
  const isItem = (line) => /^\s*[-*] /.test(line);
  const isRow = (line) => line.trim().startsWith("|");

  return function render(markdown) {
    const lines = (markdown || "").split("\n");
    const out = document.createDocumentFragment();
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) { i += 1; continue; }
      if (isRow(line) && i + 1 < lines.length && isRule(lines[i + 1])) {
        const head = cells(line).map((c) => { const th = element("th", inline(c)); th.scope = "col"; return th; });
        const body = [];
        i += 2;
        while (i < lines.length && isRow(lines[i])) {
          body.push(element("tr", cells(lines[i]).map((c) => element("td", inline(c)))));
          i += 1;
        }
        out.append(element("table", [element("thead", [element("tr", head)]), element("tbody", body)]));
        continue;
      }
      if (isItem(line)) {
        const items = [];
        while (i < lines.length && isItem(lines[i])) {
          items.push(element("li", inline(lines[i].replace(/^\s*[-*] /, ""))));
          i += 1;
        }
        out.append(element("ul", items));
        continue;
      }
      const paragraph = [];
      while (i < lines.length && lines[i].trim() && !isRow(lines[i]) && !isItem(lines[i])) {
        paragraph.push(lines[i]);
        i += 1;
      }
      out.append(element("p", inline(paragraph.join(" "))));
    }
    return out;
  };
})();
