// Vanish: the canvas editor of `SAM 2 Video Prompt` (node id VanishSAM2VideoPrompt).
//
// Shows the clip's frames inside the node (from the connected Load Video Frames node through
// GET /vanish/frame, else the frames of the last run), with a slider and arrow keys; left click
// adds a positive point, shift/right click a negative one, drag draws a box, clicking a point (or
// a box's corner handle) removes it. Everything lives in the node's `prompts` JSON widget (the
// only serialised value); the editor's own widget is never serialised. Without this file the
// JSON stays a plain text widget and the node works the same.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import {
  addBox, addPoint, clampToFrame, clearFrame, clientToFrame, cloneDoc, colorOf, cssColor,
  emptyPrompts, fitRect, hitTest, parsePrompts, promptedFrames, removeItem, serializePrompts,
} from "./vanish_prompt_model.js";
import {
  describeSource, errorText, fetchRunFrames, frameUrl, previewFrame, rememberRunFrames, runFrames,
} from "./vanish_prompt_source.js";
import { buildEditorDom, drawEditor, drawMarks, make } from "./vanish_prompt_view.js";

const NODE_TYPE = "VanishSAM2VideoPrompt";
const DRAG_PX = 5; // a press that moves further is a box
const HIT_PX = 9; // click radius for removing a point
const UNDO_LIMIT = 100;
const CACHE_FRAMES = 48;
const POLL_MS = 400;
const AUTO_PREVIEW_MS = 350;
/** A new node's size: the canvas gets >= 512 px of width at 100 % zoom (ComfyUI's DOM widgets sit
 * 10 px in from each side of the node). tests/make_workflows.py gives the shipped graphs the same. */
export const DEFAULT_NODE_SIZE = [560, 760];
/** The editor's least height in the node (toolbar, a usable canvas, slider, two status lines). */
export const MIN_EDITOR_HEIGHT = 360;

/** The node's default value (one click at 100, 100 on frame 0): a placeholder, not a prompt. */
export function isExample(doc) {
  return !doc.image_size && doc.objects.length === 1 && JSON.stringify(doc.objects[0]) ===
    JSON.stringify({ id: 1, name: "object", frames: { 0: { positive: [[100, 100]], negative: [], boxes: [] } } });
}

export class PromptEditor {
  constructor(node) {
    this.node = node;
    this.promptsWidget = node.widgets?.find((w) => w.name === "prompts");
    this.doc = emptyPrompts();
    this.docError = null;
    this.lastText = null;
    this.extraIds = [];
    this.selectedId = 1;
    this.undoStack = [];
    this.frame = 0;
    this.source = null; // {kind: "loader"|"run", key, params|refs, count, width, height}
    this.sourceError = null;
    this.cache = new Map();
    this.pendingIndex = null;
    this.loadingIndex = null;
    this.overlay = null; // {frame, text, bitmap}
    this.drag = null;
    this.autoTimer = null;
    this.requests = []; // URLs asked for, newest last (the browser test reads them)
    this.buildDom();
    this.syncFromWidget(true);
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  // ---------------------------------------------------------------------------- DOM
  buildDom() {
    const dom = buildEditorDom();
    Object.assign(this, dom); // root, canvas, slider, status, ... (see vanish_prompt_view.js)
    const on = (action, run) => dom.buttons[action].addEventListener("click", (e) => { e.preventDefault(); run(); });
    on("new", () => this.newObject());
    on("undo", () => this.undo());
    on("clear", () => this.commit((d) => clearFrame(d, this.frame)));
    on("clear-all", () => this.clearAll());
    on("preview", () => this.preview());
    this.objectSelect.addEventListener("change", () => {
      this.selectedId = Number(this.objectSelect.value);
      this.refreshObjects();
      this.draw();
    });
    this.slider.addEventListener("input", () => this.showFrame(Number(this.slider.value)));
    this.root.addEventListener("keydown", (e) => this.onKey(e));
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => this.onDown(e));
    c.addEventListener("mousedown", (e) => e.preventDefault()); // keep the focus on the slider
    c.addEventListener("pointermove", (e) => this.onMove(e));
    c.addEventListener("pointerup", (e) => this.onUp(e));
    c.addEventListener("pointercancel", () => { this.drag = null; this.draw(); });
    c.addEventListener("contextmenu", (e) => { e.preventDefault(); e.stopPropagation(); });
    this.resizeObserver = typeof ResizeObserver === "function" ? new ResizeObserver(() => this.draw()) : null;
    this.resizeObserver?.observe(this.view);
  }

  setStatus(text, isError = false) {
    this.status.textContent = text || "";
    this.status.title = text || "";
    this.status.classList.toggle("vanish-error", !!isError);
  }

  destroy() {
    clearInterval(this.timer);
    clearTimeout(this.autoTimer);
    this.resizeObserver?.disconnect();
    for (const bmp of this.cache.values()) bmp?.close?.();
    this.cache.clear();
  }

  // ---------------------------------------------------------------------------- the JSON value
  /** Re-read the widget when its text changed (hand edits, workflow load, undo). */
  syncFromWidget(force = false) {
    const text = String(this.promptsWidget?.value ?? "");
    if (!force && text === this.lastText) return;
    this.lastText = text;
    const { doc, error } = parsePrompts(text);
    this.docError = error || null;
    if (doc) this.doc = isExample(doc) ? emptyPrompts() : doc; // the node's placeholder click
    if (error) this.setStatus(`${error} — fix the text, or press "clear all".`, true);
    else if (this.status.classList.contains("vanish-error") && !this.sourceError) this.setStatus("");
    this.refreshObjects();
    this.refreshMarks();
    this.draw();
  }

  writeText(text) {
    this.lastText = text;
    if (this.promptsWidget) {
      this.promptsWidget.value = text;
      this.promptsWidget.callback?.(text);
    }
    this.node.setDirtyCanvas?.(true, true);
    this.node.graph?.setDirtyCanvas?.(true, true);
  }

  /** Apply `mutate(doc)` to a copy, store it as the widget's JSON, remember the old text for undo. */
  commit(mutate) {
    if (this.docError) {
      this.setStatus(`${this.docError} — the editor does not change it; fix it or press "clear all".`, true);
      return false;
    }
    const before = this.lastText;
    const doc = cloneDoc(this.doc);
    if (mutate(doc) === false) return false;
    if (this.source && !doc.image_size) doc.image_size = [this.source.width, this.source.height];
    const text = serializePrompts(doc);
    if (text === before) return false;
    this.undoStack.push(before);
    if (this.undoStack.length > UNDO_LIMIT) this.undoStack.shift();
    this.doc = doc;
    this.writeText(text);
    this.refreshObjects();
    this.refreshMarks();
    this.draw();
    this.scheduleAutoPreview();
    return true;
  }

  undo() {
    if (!this.undoStack.length) return;
    this.writeText(this.undoStack.pop());
    this.syncFromWidget(true);
    this.scheduleAutoPreview();
  }

  clearAll() {
    const before = this.lastText;
    const doc = emptyPrompts();
    if (this.source) doc.image_size = [this.source.width, this.source.height];
    this.undoStack.push(before);
    this.docError = null;
    this.doc = doc;
    this.extraIds = [];
    this.overlay = null;
    this.writeText(serializePrompts(doc));
    this.setStatus("");
    this.refreshObjects();
    this.refreshMarks();
    this.draw();
  }

  objectIds() {
    const ids = this.doc.objects.map((o) => o.id);
    for (const id of this.extraIds) if (!ids.includes(id)) ids.push(id);
    if (!ids.length) ids.push(1);
    return ids;
  }

  newObject() {
    // ids in use: the JSON's objects and the ones added here; none (a new node, or after
    // "clear all") means the first object is 1 -- objectIds()' implicit 1 is only a placeholder
    const used = [...this.doc.objects.map((o) => o.id), ...this.extraIds];
    const id = used.length ? Math.max(...used) + 1 : 1;
    this.extraIds.push(id);
    this.selectedId = id;
    this.refreshObjects();
    this.draw();
  }

  refreshObjects() {
    const ids = this.objectIds();
    if (!ids.includes(this.selectedId)) this.selectedId = ids[0];
    const sel = this.objectSelect;
    sel.textContent = "";
    ids.forEach((id, i) => {
      const obj = this.doc.objects.find((o) => o.id === id);
      const opt = make("option", { value: String(id), text: `● object ${id}${obj?.name ? ` (${obj.name})` : ""}` }, sel);
      opt.style.color = cssColor(colorOf(i));
    });
    sel.value = String(this.selectedId);
    this.swatch.style.background = cssColor(this.colorFor(this.selectedId));
  }

  colorFor(id) {
    return colorOf(Math.max(this.objectIds().indexOf(id), 0));
  }

  refreshMarks() {
    drawMarks(this.marks, promptedFrames(this.doc), this.source?.count ?? 0, this.frame);
  }

  // ---------------------------------------------------------------------------- frame source
  /** After a page reload the node's output may be cached: ask the server for its last run's frames. */
  askRunFrames() {
    const id = String(this.node.id);
    if (this.runFramesAsked === id || this.node.id == null || Number(this.node.id) < 0) return;
    this.runFramesAsked = id;
    fetchRunFrames(api, id, this.requests);
  }

  poll() {
    this.syncFromWidget();
    const wanted = describeSource(this.node);
    if (!wanted) this.askRunFrames();
    const key = wanted?.key ?? null;
    if (key === this.sourceKey) return; // (undefined before the first poll)
    this.sourceKey = key;
    this.loadSource(wanted);
  }

  async loadSource(wanted) {
    this.cache.clear();
    this.overlay = null;
    this.source = null;
    this.sourceError = null;
    if (!wanted) {
      this.setStatus("Connect Load Video Frames to 'frames' (or run the graph once) to see the clip.");
      this.updateSlider();
      this.draw();
      return;
    }
    if (wanted.kind === "run") {
      const [w, h] = wanted.run.size;
      this.source = { ...wanted, count: wanted.run.refs.length, width: w, height: h };
      this.setStatus(`Frames of the last run: ${w}x${h}, ${this.source.count} frames`);
    } else {
      const url = "/vanish/video_info?" + new URLSearchParams(wanted.params);
      this.requests.push(url);
      let response;
      try {
        response = await api.fetchApi(url);
      } catch (err) {
        response = null;
      }
      if (this.sourceKey !== wanted.key) return; // the loader changed meanwhile
      if (!response || !response.ok) {
        this.sourceError = response ? await errorText(response) : "the server did not answer";
        const fallback = runFrames.get(String(this.node.id));
        if (fallback) {
          const [w, h] = fallback.size;
          this.source = { kind: "run", key: wanted.key, run: fallback, count: fallback.refs.length, width: w, height: h };
        }
        this.setStatus(`Frames: ${this.sourceError}${fallback ? " (showing the last run's frames)" : ""}`, true);
      } else {
        const info = await response.json();
        this.source = { ...wanted, count: info.frame_count, width: info.width, height: info.height };
        this.setStatus(`${info.width}x${info.height}, ${info.frame_count} frames`);
      }
    }
    this.updateSlider();
    this.showFrame(Math.min(this.frame, Math.max((this.source?.count ?? 1) - 1, 0)));
  }

  updateSlider() {
    const count = this.source?.count ?? 0;
    this.slider.max = String(Math.max(count - 1, 0)); // never disabled: it holds the keyboard focus
    this.refreshMarks();
    this.updateLabel();
  }

  updateLabel() {
    const count = this.source?.count ?? 0;
    this.frameLabel.textContent = `frame ${this.frame} / ${Math.max(count - 1, 0)}`;
  }

  /** Go to frame `index`; fetches it unless cached (only the newest wanted frame is fetched next). */
  showFrame(index) {
    const count = this.source?.count ?? 0;
    this.frame = Math.max(0, Math.min(Math.round(index) || 0, Math.max(count - 1, 0)));
    this.slider.value = String(this.frame);
    this.updateLabel();
    this.refreshMarks();
    this.draw();
    if (!count || this.cache.has(this.frame)) return;
    this.pendingIndex = this.frame;
    if (this.loadingIndex === null) this.fetchPending();
  }

  async fetchPending() {
    while (this.pendingIndex !== null && this.source) {
      const index = this.pendingIndex;
      const key = this.sourceKey;
      this.pendingIndex = null;
      if (this.cache.has(index)) continue;
      this.loadingIndex = index;
      const url = frameUrl(this.source, index);
      this.requests.push(url);
      try {
        const response = await api.fetchApi(url);
        if (!response.ok) {
          this.setStatus(`Frame ${index}: ${await errorText(response)}`, true);
        } else {
          const bitmap = await createImageBitmap(await response.blob());
          if (key !== this.sourceKey) { bitmap.close?.(); break; }
          this.cache.set(index, bitmap);
          while (this.cache.size > CACHE_FRAMES) {
            const oldest = this.cache.keys().next().value;
            this.cache.get(oldest)?.close?.();
            this.cache.delete(oldest);
          }
        }
      } catch (err) {
        this.setStatus(`Frame ${index}: ${err.message || err}`, true);
      }
      this.loadingIndex = null;
      if (index === this.frame) this.draw();
    }
    this.loadingIndex = null;
  }

  // ---------------------------------------------------------------------------- geometry
  /** The coordinate space of the prompts: the JSON's image_size, else the clip's frame size. */
  frameSize() {
    const size = this.doc.image_size;
    if (Array.isArray(size) && size[0] > 0 && size[1] > 0) return size;
    if (this.source) return [this.source.width, this.source.height];
    return null;
  }

  layout() {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    const size = this.frameSize();
    const image = size ? fitRect(w, h, size[0], size[1]) : null;
    return { w, h, size, image };
  }

  eventToFrame(e) {
    const { w, h, size, image } = this.layout();
    if (!image || !image.w) return null;
    const rect = this.canvas.getBoundingClientRect();
    const p = clientToFrame(e.clientX, e.clientY, rect, w, h, image, size[0], size[1]);
    const lx = ((e.clientX - rect.left) / rect.width) * w;
    const ly = ((e.clientY - rect.top) / rect.height) * h;
    return { ...p, lx, ly, size, image };
  }

  // ---------------------------------------------------------------------------- input
  onDown(e) {
    e.stopPropagation();
    // keys go to the slider: ComfyUI's undo/shortcuts (window capture listeners) skip focused inputs
    this.slider.focus({ preventScroll: true });
    if (e.button !== 0 && e.button !== 2) return;
    const p = this.eventToFrame(e);
    if (!p) {
      this.setStatus("No frame yet: connect Load Video Frames to 'frames', or run the graph once.", true);
      return;
    }
    this.canvas.setPointerCapture?.(e.pointerId);
    this.drag = { start: p, now: p, button: e.button, shift: e.shiftKey, moved: false, sx: e.clientX, sy: e.clientY };
  }

  onMove(e) {
    if (!this.drag) return;
    e.stopPropagation();
    const p = this.eventToFrame(e);
    if (!p) return;
    this.drag.now = p;
    if (Math.hypot(e.clientX - this.drag.sx, e.clientY - this.drag.sy) > DRAG_PX && this.drag.button === 0) {
      this.drag.moved = true;
    }
    if (this.drag.moved) this.draw();
  }

  onUp(e) {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    e.stopPropagation();
    const p = this.eventToFrame(e) || drag.now;
    const [fw, fh] = p.size;
    if (drag.moved) {
      const a = clampToFrame(drag.start, fw, fh);
      const b = clampToFrame(p, fw, fh);
      if (Math.abs(a.x - b.x) >= 1 && Math.abs(a.y - b.y) >= 1) {
        this.commit((d) => addBox(d, this.selectedId, this.frame, a.x, a.y, b.x, b.y));
      } else {
        this.draw();
      }
      return;
    }
    const hit = hitTest(this.doc, this.frame, drag.start.lx, drag.start.ly, drag.start.image, fw, fh, HIT_PX);
    if (hit) {
      this.commit((d) => removeItem(d, hit));
      return;
    }
    if (!drag.start.inside) return;
    const kind = drag.button === 2 || drag.shift ? "negative" : "positive";
    this.commit((d) => addPoint(d, this.selectedId, this.frame, kind, drag.start.x, drag.start.y));
  }

  onKey(e) {
    if (![this.root, this.canvas, this.slider].includes(e.target)) return; // typing in a control
    const step = e.shiftKey ? 10 : 1;
    if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      this.showFrame(this.frame + (e.key === "ArrowLeft" ? -step : step));
    } else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") {
      this.undo();
    } else {
      return;
    }
    e.preventDefault();
    e.stopPropagation();
  }

  // ---------------------------------------------------------------------------- preview
  scheduleAutoPreview() {
    if (!this.autoBox.checked) return;
    clearTimeout(this.autoTimer);
    this.autoTimer = setTimeout(() => this.preview(), AUTO_PREVIEW_MS);
  }

  async preview() {
    if (!this.source) {
      this.setStatus("No frames to preview on yet.", true);
      return;
    }
    if (this.docError) {
      this.setStatus(this.docError, true);
      return;
    }
    const frame = this.frame;
    const text = this.lastText;
    const colors = {};
    for (const id of this.objectIds()) colors[String(id)] = this.colorFor(id);
    const body = { frame: previewFrame(this.source, frame), index: frame, prompts: serializePrompts(this.doc), colors };
    this.requests.push("/vanish/preview#" + frame);
    this.setStatus("Preview: running SAM 2…");
    try {
      const response = await api.fetchApi("/vanish/preview", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (!response.ok) {
        this.setStatus(`Preview: ${await errorText(response)}`, true);
        return;
      }
      const bitmap = await createImageBitmap(await response.blob());
      this.overlay?.bitmap?.close?.();
      this.overlay = { frame, text, bitmap };
      this.setStatus(`Preview of frame ${frame}${text !== this.lastText ? " (prompts changed since)" : ""}`);
      this.draw();
    } catch (err) {
      this.setStatus(`Preview: ${err.message || err}`, true);
    }
  }

  // ---------------------------------------------------------------------------- drawing
  draw() {
    const overlay = this.overlay && this.overlay.frame === this.frame ? this.overlay.bitmap : null;
    drawEditor(this.canvas, this.layout(), {
      bitmap: this.cache.get(this.frame), overlay, doc: this.doc, frame: this.frame,
      ids: this.objectIds(), selectedId: this.selectedId, drag: this.drag?.moved ? this.drag : null,
    });
  }
}

// ------------------------------------------------------------------------------- registration
function attachEditor(node) {
  if (node.__vanishEditor || !node.widgets?.some((w) => w.name === "prompts")) return;
  const editor = new PromptEditor(node);
  node.__vanishEditor = editor;
  const widget = node.addDOMWidget("vanish_editor", "vanish_prompt_editor", editor.root, {
    serialize: false, // the JSON in `prompts` is the only stored value
    hideOnZoom: false,
    getValue: () => "",
    setValue: () => {},
    getMinHeight: () => MIN_EDITOR_HEIGHT,
  });
  widget.serialize = false; // keep widgets_values exactly the node's Python widgets
  const removed = node.onRemoved;
  node.onRemoved = function () {
    editor.destroy();
    return removed?.apply(this, arguments);
  };
  const configured = node.onConfigure;
  node.onConfigure = function () {
    const out = configured?.apply(this, arguments);
    node.__vanishConfigured = true;
    editor.undoStack = [];
    editor.syncFromWidget(true);
    return out;
  };
  // a new node gets room for the editor; a loaded one keeps its saved size (configure runs first)
  setTimeout(() => {
    if (!node.__vanishConfigured && node.size) {
      node.setSize?.([Math.max(node.size[0], DEFAULT_NODE_SIZE[0]), Math.max(node.size[1], DEFAULT_NODE_SIZE[1])]);
      node.setDirtyCanvas?.(true, true);
    }
  }, 0);
}

app.registerExtension({
  name: "vanish.promptEditor",
  setup() {
    api.addEventListener("vanish.run_frames", (event) => rememberRunFrames(event.detail));
  },
  async nodeCreated(node) {
    if ((node.comfyClass ?? node.type) === NODE_TYPE) attachEditor(node);
  },
});
