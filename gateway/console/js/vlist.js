// A virtual list: a scrolling box whose content is as tall as all rows, with only the rows in view (plus a margin)
// in the DOM. Fixed row height, measured once from a real row, so 10,000 jobs or 100,000 log lines cost the same
// to show as 30.

export class VirtualList {
  // box: the scrolling element; renderRow(index) -> element; rowClass: CSS class of a row (for measuring).
  constructor(box, renderRow, { overscan = 10, label } = {}) {
    this.box = box;
    this.renderRow = renderRow;
    this.overscan = overscan;
    this.count = 0;
    this.rowHeight = 0;
    this.first = -1;
    this.last = -1;
    this.sizer = document.createElement("div");
    this.sizer.className = "vlist-sizer";
    this.window = document.createElement("div");
    this.window.className = "vlist-window";
    this.window.setAttribute("role", "rowgroup");
    if (label) this.window.setAttribute("aria-label", label);
    this.sizer.append(this.window);
    box.append(this.sizer);
    this.frame = 0;
    box.addEventListener("scroll", () => this.schedule(), { passive: true });
    this.resizeObserver = new ResizeObserver(() => this.schedule(true));
    this.resizeObserver.observe(box);
  }

  measure() {
    if (this.rowHeight || this.count === 0) return;
    const probe = this.renderRow(0);
    this.window.append(probe);
    this.rowHeight = probe.getBoundingClientRect().height || 20;
    probe.remove();
  }

  setCount(count, { keepBottom = false } = {}) {
    const atBottom = this.atBottom();
    this.count = count;
    this.measure();
    this.sizer.style.height = `${count * this.rowHeight}px`;
    this.first = -1;  // contents may have changed: render again
    this.render();
    if (keepBottom && atBottom) this.scrollToEnd();
  }

  refresh() { this.first = -1; this.render(); }

  atBottom() {
    return this.box.scrollTop + this.box.clientHeight >= this.box.scrollHeight - Math.max(4, this.rowHeight);
  }

  scrollToEnd() { this.box.scrollTop = this.box.scrollHeight; this.render(); }

  schedule(force) {
    if (force) this.first = -1;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    if (!this.rowHeight) { this.measure(); if (!this.rowHeight) { this.window.replaceChildren(); return; } }
    const top = this.box.scrollTop;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - this.overscan);
    const visible = Math.ceil(this.box.clientHeight / this.rowHeight) + 2 * this.overscan;
    const last = Math.min(this.count, first + visible);
    if (first === this.first && last === this.last) return;
    this.first = first;
    this.last = last;
    const rows = [];
    for (let i = first; i < last; i += 1) rows.push(this.renderRow(i));
    this.window.replaceChildren(...rows);
    this.window.style.transform = `translateY(${first * this.rowHeight}px)`;
    if (this.onRender) this.onRender(first, last);
  }

  destroy() {
    this.resizeObserver.disconnect();
    cancelAnimationFrame(this.frame);
  }
}
