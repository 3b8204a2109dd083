// The SAM 2 prompt editor's DOM and canvas drawing (no ComfyUI imports): the elements of the
// widget, and how a frame, the mask overlay and the prompts are painted into the canvas.
import { clampToFrame, colorOf, cssColor, frameToLayout } from "./vanish_prompt_model.js";

const STYLE = `
.vanish-editor{display:flex;flex-direction:column;gap:4px;width:100%;height:100%;box-sizing:border-box;
  font:12px sans-serif;color:#ddd;outline:none;padding:2px 0}
.vanish-editor .vanish-bar{display:flex;gap:4px;align-items:center;flex-wrap:wrap}
.vanish-editor button,.vanish-editor select{font:12px sans-serif;background:#333;color:#ddd;
  border:1px solid #555;border-radius:4px;padding:2px 6px;cursor:pointer}
.vanish-editor button:hover{background:#444}
.vanish-editor .vanish-swatch{width:12px;height:12px;border-radius:50%;display:inline-block;border:1px solid #000}
.vanish-editor .vanish-view{position:relative;flex:1 1 auto;min-height:80px;background:#111;border-radius:4px;overflow:hidden}
.vanish-editor canvas{position:absolute;left:0;top:0;width:100%;height:100%;cursor:crosshair;touch-action:none}
.vanish-editor .vanish-scrub{position:relative;display:flex;align-items:center;gap:6px}
.vanish-editor .vanish-track{position:relative;flex:1 1 auto;display:flex}
.vanish-editor .vanish-scrub input{flex:1 1 auto;margin:0}
.vanish-editor .vanish-marks{position:absolute;left:8px;right:8px;top:-5px;height:5px;pointer-events:none}
.vanish-editor .vanish-marks span{position:absolute;width:4px;height:5px;margin-left:-2px;border-radius:1px}
.vanish-editor .vanish-status{min-height:15px;flex:0 0 auto;color:#aaa;white-space:normal;overflow-wrap:anywhere;
  line-height:15px}
.vanish-editor .vanish-status.vanish-error{color:#f88}
`;

function addStyle() {
  if (document.getElementById("vanish-editor-style")) return;
  const el = document.createElement("style");
  el.id = "vanish-editor-style";
  el.textContent = STYLE;
  document.head.appendChild(el);
}

export function make(tag, attrs = {}, parent = null) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") el.textContent = v;
    else if (k === "className") el.className = v;
    else el.setAttribute(k, v);
  }
  if (parent) parent.appendChild(el);
  return el;
}

/** Toolbar buttons: [data-action, label, tooltip]. */
const BUTTONS = [
  ["new", "+ object", "New object: the next clicks start another object"],
  ["undo", "undo", "Undo the last edit (Ctrl+Z)"],
  ["clear", "clear frame", "Clear this frame's prompts (all objects)"],
  ["clear-all", "clear all", "Clear all prompts on all frames"],
  ["preview", "preview", "Preview the SAM 2 mask of this frame with the loaded model"],
];

/**
 * The widget's elements: {root, swatch, objectSelect, buttons: {action: button}, autoBox, view,
 * canvas, slider, marks, frameLabel, status}. The editor attaches the behaviour.
 */
export function buildEditorDom() {
  addStyle();
  const root = make("div", { className: "vanish-editor" });
  const bar = make("div", { className: "vanish-bar" }, root);
  const swatch = make("span", { className: "vanish-swatch" }, bar);
  const objectSelect = make("select", { title: "Object the clicks belong to" }, bar);
  const buttons = {};
  for (const [action, label, title] of BUTTONS) {
    buttons[action] = make("button", { text: label, title }, bar);
    buttons[action].dataset.action = action;
  }
  const autoLabel = make("label", { title: "Preview automatically after each edit" }, bar);
  const autoBox = make("input", { type: "checkbox" }, autoLabel);
  autoLabel.append(" auto");
  const view = make("div", { className: "vanish-view" }, root);
  const canvas = make("canvas", {}, view);
  const scrub = make("div", { className: "vanish-scrub" }, root);
  const track = make("div", { className: "vanish-track" }, scrub);
  const slider = make("input", { type: "range", min: "0", max: "0", value: "0", step: "1",
    title: "Frame (arrow keys: one frame, shift: ten)" }, track);
  const marks = make("div", { className: "vanish-marks" }, track);
  const frameLabel = make("span", { text: "frame 0 / 0" }, scrub);
  const status = make("div", { className: "vanish-status" }, root);
  return { root, swatch, objectSelect, buttons, autoBox, view, canvas, slider, marks, frameLabel, status };
}

/** Ticks above the slider at the frames that carry prompts (`current` drawn white). */
export function drawMarks(marks, frames, count, current) {
  marks.textContent = "";
  for (const t of frames) {
    if (count && t >= count) continue;
    const mark = make("span", {}, marks);
    mark.dataset.frame = String(t);
    mark.style.left = count > 1 ? `${(t / (count - 1)) * 100}%` : "0%";
    mark.style.background = t === current ? "#fff" : "#fc3";
  }
}

/**
 * Paint one state of the editor into `canvas` (sized to its layout box times devicePixelRatio).
 * `view`: {w, h, image, size} (layout size, displayed image rectangle, prompt coordinate space);
 * `scene`: {bitmap, overlay, doc, frame, ids, selectedId, drag}.
 */
export function drawEditor(canvas, view, scene) {
  const dpr = window.devicePixelRatio || 1;
  const { w, h, image, size } = view;
  if (!w || !h) return;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  if (!image) return;
  if (scene.bitmap) g.drawImage(scene.bitmap, image.x, image.y, image.w, image.h);
  else {
    g.fillStyle = "#222";
    g.fillRect(image.x, image.y, image.w, image.h);
  }
  if (scene.overlay) g.drawImage(scene.overlay, image.x, image.y, image.w, image.h);
  drawPrompts(g, image, size, scene);
  if (scene.drag) {
    const toLayout = (p) => {
      const q = clampToFrame(p, size[0], size[1]);
      return frameToLayout(q.x, q.y, image, size[0], size[1]);
    };
    const a = toLayout(scene.drag.start);
    const b = toLayout(scene.drag.now);
    g.setLineDash([5, 4]);
    g.strokeStyle = cssColor(colorOf(Math.max(scene.ids.indexOf(scene.selectedId), 0)));
    g.lineWidth = 2;
    g.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
    g.setLineDash([]);
  }
}

function drawPrompts(g, image, size, scene) {
  const [fw, fh] = size;
  for (const obj of scene.doc.objects) {
    const fp = obj.frames[String(scene.frame)];
    if (!fp) continue;
    const rgb = colorOf(Math.max(scene.ids.indexOf(obj.id), 0));
    const selected = obj.id === scene.selectedId;
    for (const b of fp.boxes || []) {
      const p0 = frameToLayout(b[0], b[1], image, fw, fh);
      const p1 = frameToLayout(b[2], b[3], image, fw, fh);
      drawBox(g, p0, p1, rgb, selected);
    }
    for (const [kind, list] of [["positive", fp.positive || []], ["negative", fp.negative || []]]) {
      for (const v of list) drawPoint(g, frameToLayout(v[0], v[1], image, fw, fh), rgb, kind, selected);
    }
  }
}

/** A box with its remove handle (an x in a square) on the top-right corner. */
function drawBox(g, p0, p1, rgb, selected) {
  g.strokeStyle = cssColor(rgb);
  g.lineWidth = selected ? 2.5 : 1.5;
  g.strokeRect(p0.x, p0.y, p1.x - p0.x, p1.y - p0.y);
  g.fillStyle = cssColor(rgb);
  g.fillRect(p1.x - 5, p0.y - 5, 10, 10);
  g.strokeStyle = "#000";
  g.lineWidth = 1.5;
  g.beginPath();
  g.moveTo(p1.x - 3, p0.y - 3); g.lineTo(p1.x + 3, p0.y + 3);
  g.moveTo(p1.x + 3, p0.y - 3); g.lineTo(p1.x - 3, p0.y + 3);
  g.stroke();
}

/** Positive: a filled dot in the object's colour with a "+"; negative: a dark dot with a "-". */
function drawPoint(g, p, rgb, kind, selected) {
  const r = selected ? 6.5 : 5.5;
  g.beginPath();
  g.arc(p.x, p.y, r, 0, Math.PI * 2);
  g.fillStyle = kind === "positive" ? cssColor(rgb) : "#111";
  g.fill();
  g.lineWidth = 2;
  g.strokeStyle = kind === "positive" ? "#fff" : cssColor(rgb);
  g.stroke();
  g.beginPath();
  g.strokeStyle = kind === "positive" ? "#000" : "#fff";
  g.lineWidth = 1.8;
  g.moveTo(p.x - 3, p.y); g.lineTo(p.x + 3, p.y);
  if (kind === "positive") { g.moveTo(p.x, p.y - 3); g.lineTo(p.x, p.y + 3); }
  g.stroke();
}
