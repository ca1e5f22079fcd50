/*
 * Renders PDF blocks of the workbench (.rc-pdf[data-src]) into canvases with the vendored pdf.js
 * (static/vendor/pdfjs, Apache-2.0). The library and its worker URLs come from data attributes,
 * so hashed static file names work. No eval (isEvalSupported: false), no network beyond the
 * portal itself: a data: URI is decoded here, an attachment is fetched from its same-origin URL.
 */
const MAX_PAGES = 30;

function bytesOfDataUri(uri) {
  const comma = uri.indexOf(",");
  const binary = atob(uri.slice(comma + 1));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) { bytes[i] = binary.charCodeAt(i); }
  return bytes;
}

async function renderBlock(block) {
  const status = block.querySelector(".rc-pdf-status");
  const pages = block.querySelector(".rc-pdf-pages");
  try {
    const pdfjs = await import(block.dataset.lib);
    pdfjs.GlobalWorkerOptions.workerSrc = block.dataset.worker;
    const src = block.dataset.src;
    const source = src.startsWith("data:") ? { data: bytesOfDataUri(src) } : { url: src, withCredentials: true };
    const pdf = await pdfjs.getDocument({ ...source, isEvalSupported: false, enableXfa: false }).promise;
    const count = Math.min(pdf.numPages, MAX_PAGES);
    const width = Math.max(pages.clientWidth || block.clientWidth || 600, 200);
    for (let number = 1; number <= count; number += 1) {
      const page = await pdf.getPage(number);
      const base = page.getViewport({ scale: 1 });
      const scale = width / base.width;
      const ratio = window.devicePixelRatio || 1;
      const viewport = page.getViewport({ scale: scale * ratio });
      const canvas = document.createElement("canvas");
      canvas.width = Math.floor(viewport.width);
      canvas.height = Math.floor(viewport.height);
      canvas.className = "rc-pdf-page";
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `Page ${number} of ${pdf.numPages}`);
      pages.appendChild(canvas);
      await page.render({ canvasContext: canvas.getContext("2d"), viewport }).promise;
    }
    status.textContent = pdf.numPages > count
      ? `Showing the first ${count} of ${pdf.numPages} pages.`
      : `${pdf.numPages} page${pdf.numPages === 1 ? "" : "s"}.`;
    block.dataset.rendered = String(count);
  } catch (error) {
    status.textContent = "The PDF could not be shown here" + (error && error.message ? `: ${error.message}` : ".");
    status.classList.add("error");
    block.dataset.rendered = "error";
  }
}

for (const block of document.querySelectorAll(".rc-pdf[data-src]")) {
  renderBlock(block);
}
