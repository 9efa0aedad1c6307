// A small Markdown renderer for card details (CDS Hooks: GitHub-flavoured Markdown): paragraphs,
// **bold**, *emphasis*, `code`, [links](https://...), <https://...>, bullet lists and tables.
// Everything is HTML-escaped first, so a card can never inject markup into the page.
"use strict";
window.renderMarkdown = (function () {
  function escape(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function inline(text) {
    let html = escape(text);
    html = html.replace(/&lt;(https?:\/\/[^\s&]+)&gt;/g, '<a href="$1" rel="noopener" target="_blank">$1</a>');
    html = html.replace(/\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2" rel="noopener" target="_blank">$1</a>');
    html = html.replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
    html = html.replace(/(^|[^*])\*([^*]+)\*/g, "$1<em>$2</em>");
    html = html.replace(/`([^`]+)`/g, "<code>$1</code>");
    return html;
  }
  function cells(line) {
    return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
  }
  return function render(markdown) {
    const lines = (markdown || "").split("\n");
    const out = [];
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) { i += 1; continue; }
      if (line.trim().startsWith("|") && i + 1 < lines.length && /^\s*\|[\s:|-]+\|\s*$/.test(lines[i + 1])) {
        const head = cells(line).map((c) => "<th scope=\"col\">" + inline(c) + "</th>").join("");
        const rows = [];
        i += 2;
        while (i < lines.length && lines[i].trim().startsWith("|")) {
          rows.push("<tr>" + cells(lines[i]).map((c) => "<td>" + inline(c) + "</td>").join("") + "</tr>");
          i += 1;
        }
        out.push("<table><thead><tr>" + head + "</tr></thead><tbody>" + rows.join("") + "</tbody></table>");
        continue;
      }
      if (/^\s*[-*] /.test(line)) {
        const items = [];
        while (i < lines.length && /^\s*[-*] /.test(lines[i])) {
          items.push("<li>" + inline(lines[i].replace(/^\s*[-*] /, "")) + "</li>");
          i += 1;
        }
        out.push("<ul>" + items.join("") + "</ul>");
        continue;
      }
      const paragraph = [];
      while (i < lines.length && lines[i].trim() && !lines[i].trim().startsWith("|") && !/^\s*[-*] /.test(lines[i])) {
        paragraph.push(lines[i]);
        i += 1;
      }
      out.push("<p>" + inline(paragraph.join(" ")) + "</p>");
    }
    return out.join("\n");
  };
})();
