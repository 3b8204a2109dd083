// Browser test of the SAM 2 prompt editor (web/js/vanish_prompt_editor.js) in Debian's chromium.
//
// Serves tests/web/page (a stand-in for ComfyUI's app/api and a fake server) and the pack's web/
// folder on 127.0.0.1, then clicks at screen positions computed from the displayed image
// rectangle and checks the prompts JSON. Run by tests/web/test_editor_browser.py; prints one
// "ok"/"FAIL" line per check and exits 1 on any failure. Set VANISH_SCREENSHOTS=<folder> to save
// screenshots of the widget.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const WEB = resolve(HERE, "..", "..", "web");
const PAGE = join(HERE, "page");
const CHROMIUM = process.env.VANISH_CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.VANISH_SCREENSHOTS || "";
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css" };

let failures = 0;
function check(name, ok, detail = "") {
  if (ok) console.log(`ok   ${name}`);
  else {
    failures += 1;
    console.log(`FAIL ${name} ${detail}`);
  }
}

function serve() {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const [root, rest] = path.startsWith("/extensions/ComfyUI-Vanish/") ? [WEB, path.slice(27)]
      : [PAGE, path === "/" ? "index.html" : path.slice(1)];
    const file = normalize(join(root, rest));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "Content-Type": TYPES[extname(file)] || "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

// -------------------------------------------------------------------------------- helpers
/** Where the editor should show a frame: letterboxed and centred in the canvas (the spec). */
function expectedRect(layoutW, layoutH, frameW, frameH) {
  const s = Math.min(layoutW / frameW, layoutH / frameH);
  return { x: (layoutW - frameW * s) / 2, y: (layoutH - frameH * s) / 2, w: frameW * s, h: frameH * s };
}

async function canvasGeometry(page) {
  return page.evaluate(() => {
    const c = document.querySelector(".vanish-editor canvas");
    const r = c.getBoundingClientRect();
    return { left: r.left, top: r.top, width: r.width, height: r.height, layoutW: c.clientWidth, layoutH: c.clientHeight };
  });
}

/** Screen position of frame pixel (fx, fy). */
function screenOf(geo, frameW, frameH, fx, fy) {
  const img = expectedRect(geo.layoutW, geo.layoutH, frameW, frameH);
  const zoom = geo.width / geo.layoutW;
  return { x: geo.left + (img.x + (fx / frameW) * img.w) * zoom, y: geo.top + (img.y + (fy / frameH) * img.h) * zoom,
    pxPerFrame: (img.w / frameW) * zoom };
}

const prompts = (page) => page.evaluate(() => JSON.parse(window.testNode.widgets[0].value || "{}"));
const editorState = (page) => page.evaluate(() => {
  const e = window.testNode.__vanishEditor;
  return { frame: e.frame, cached: [...e.cache.keys()], status: e.status.textContent, slider: e.slider.value,
    marks: [...e.marks.children].map((m) => Number(m.dataset.frame)), ids: [...e.objectSelect.options].map((o) => Number(o.value)) };
});

async function setup(page, options) {
  const names = await page.evaluate((o) => window.setupEditor(o), options);
  await page.waitForFunction((n) => {
    const e = window.testNode.__vanishEditor;
    return e && e.cache.has(n) && e.loadingIndex === null;
  }, options.expectFrame ?? 0, { timeout: 10000 });
  return names;
}

async function pixelAt(page, x, y) {
  return page.evaluate(([x, y]) => {
    const c = document.querySelector(".vanish-editor canvas");
    const r = c.getBoundingClientRect();
    const px = Math.floor(((x - r.left) / r.width) * c.width);
    const py = Math.floor(((y - r.top) / r.height) * c.height);
    return [...c.getContext("2d").getImageData(px, py, 1, 1).data];
  }, [x, y]);
}

const zoomOf = (geo) => geo.width / geo.layoutW;
const near = (a, b, tol) => Math.abs(a - b) <= tol;

// -------------------------------------------------------------------------------- scenarios
async function testMapping(page) {
  const cases = [
    { hostW: 480, hostH: 420, zoom: 1, frameW: 972, frameH: 540 },
    { hostW: 300, hostH: 560, zoom: 1.7, frameW: 972, frameH: 540 },
    { hostW: 760, hostH: 360, zoom: 0.6, frameW: 240, frameH: 432 },
    { hostW: 420, hostH: 700, zoom: 1.25, frameW: 64, frameH: 48 },
  ];
  for (const c of cases) {
    const label = `${c.hostW}x${c.hostH} zoom ${c.zoom} frame ${c.frameW}x${c.frameH}`;
    await setup(page, c);
    const geo = await canvasGeometry(page);
    const targets = [[0.25, 0.3], [0.8, 0.75], [0.02, 0.97]].map(([u, v]) => [u * c.frameW, v * c.frameH]);
    for (const [fx, fy] of targets) {
      const s = screenOf(geo, c.frameW, c.frameH, fx, fy);
      await page.mouse.click(s.x, s.y);
    }
    const doc = await prompts(page);
    const got = doc.objects?.[0]?.frames?.["0"]?.positive ?? [];
    const tol = 0.6 / Math.min(1, (await screenOf(geo, c.frameW, c.frameH, 0, 0)).pxPerFrame) + 0.06;
    check(`${label}: three clicks give three positive points`, got.length === 3, JSON.stringify(doc));
    targets.forEach(([fx, fy], i) => {
      const p = got[i] || [NaN, NaN];
      check(`${label}: click ${i} at frame (${fx.toFixed(1)}, ${fy.toFixed(1)})`, near(p[0], fx, tol) && near(p[1], fy, tol),
        `got ${JSON.stringify(p)} tol ${tol.toFixed(2)}`);
    });
    check(`${label}: image_size is the frame size`, JSON.stringify(doc.image_size) === JSON.stringify([c.frameW, c.frameH]));
    // the point is drawn where it was clicked: the object's colour (red) under the cursor
    const s = screenOf(geo, c.frameW, c.frameH, targets[0][0], targets[0][1]);
    const px = await pixelAt(page, s.x + 3.5 * zoomOf(geo), s.y + 3.5 * zoomOf(geo));
    check(`${label}: point drawn under the cursor`, px[0] > 200 && px[1] < 120 && px[2] < 120, JSON.stringify(px));
    // outside the image (letterbox bars) nothing is added
    const img = expectedRect(geo.layoutW, geo.layoutH, c.frameW, c.frameH);
    const zoom = geo.width / geo.layoutW;
    const bar = img.y > 8 ? [geo.left + geo.width / 2, geo.top + (img.y / 2) * zoom]
      : [geo.left + (img.x / 2) * zoom, geo.top + geo.height / 2];
    if (img.y > 8 || img.x > 8) {
      await page.mouse.click(bar[0], bar[1]);
      const after = await prompts(page);
      check(`${label}: click on the letterbox bar adds nothing`, after.objects[0].frames["0"].positive.length === 3);
    }
    if (SHOTS && c.zoom === 1) await page.locator("#host").screenshot({ path: join(SHOTS, "editor_stub.png") });
  }
}

async function testEditing(page) {
  const W = 320, H = 180;
  const names = await setup(page, { frameW: W, frameH: H });
  check("editor widget is added after the node's widgets", JSON.stringify(names) === JSON.stringify(["prompts", "frame_index", "object_id", "vanish_editor"]), JSON.stringify(names));
  check("editor widget is not serialised", await page.evaluate(() => {
    const w = window.testNode.widgets[3];
    return w.serialize === false && w.options.serialize === false;
  }));
  const geo = await canvasGeometry(page);
  const at = (fx, fy) => screenOf(geo, W, H, fx, fy);
  await page.keyboard.down("Shift");
  await page.mouse.click(at(100, 50).x, at(100, 50).y);
  await page.keyboard.up("Shift");
  await page.mouse.click(at(200, 60).x, at(200, 60).y, { button: "right" });
  let fp = (await prompts(page)).objects[0].frames["0"];
  check("shift-click and right click add negative points", fp.negative?.length === 2 && !fp.positive && near(fp.negative[0][0], 100, 0.6) && near(fp.negative[1][1], 60, 0.6), JSON.stringify(fp));
  const a = at(40, 30), b = at(160, 150);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2, { steps: 4 });
  await page.mouse.move(b.x, b.y, { steps: 4 });
  await page.mouse.up();
  fp = (await prompts(page)).objects[0].frames["0"];
  const box = fp.boxes?.[0] || [];
  check("drag draws a box", box.length === 4 && near(box[0], 40, 0.6) && near(box[1], 30, 0.6) && near(box[2], 160, 0.6) && near(box[3], 150, 0.6), JSON.stringify(fp));
  // a drag past the frame edge is clamped to the frame
  const c0 = at(250, 100), c1 = at(400, 250);
  await page.mouse.move(c0.x, c0.y);
  await page.mouse.down();
  await page.mouse.move(c1.x, c1.y, { steps: 6 });
  await page.mouse.up();
  fp = (await prompts(page)).objects[0].frames["0"];
  check("a box is clamped to the frame", JSON.stringify(fp.boxes?.[1]) === JSON.stringify([250, 100, W, H]), JSON.stringify(fp.boxes));
  await page.mouse.click(at(100, 50).x + 2, at(100, 50).y - 1); // on the first negative point
  fp = (await prompts(page)).objects[0].frames["0"];
  check("clicking a point removes it", fp.negative?.length === 1 && near(fp.negative[0][0], 200, 0.6), JSON.stringify(fp));
  await page.mouse.click(at(160, 30).x, at(160, 30).y); // the first box's handle (top-right corner)
  fp = (await prompts(page)).objects[0].frames["0"];
  check("clicking a box's corner handle removes it", fp.boxes?.length === 1, JSON.stringify(fp));
  await page.keyboard.press("Control+z");
  fp = (await prompts(page)).objects[0].frames["0"];
  check("undo (Ctrl+Z) restores the box", fp.boxes?.length === 2, JSON.stringify(fp));
  await page.click('.vanish-editor button[data-action="undo"]');
  fp = (await prompts(page)).objects[0].frames["0"];
  check("undo button restores the removed point", fp.negative?.length === 2, JSON.stringify(fp));

  // a second object: its own id and colour
  await page.click('.vanish-editor button[data-action="new"]');
  await page.mouse.click(at(300, 20).x, at(300, 20).y);
  let doc = await prompts(page);
  check("new object gets id 2", doc.objects.length === 2 && doc.objects[1].id === 2 && near(doc.objects[1].frames["0"].positive[0][0], 300, 0.6), JSON.stringify(doc));
  const px = await pixelAt(page, at(300, 20).x + 3.5, at(300, 20).y + 3.5);
  check("object 2 is drawn in its own colour (blue)", px[2] > 200 && px[0] < 120, JSON.stringify(px));
  await page.selectOption(".vanish-editor select", "1");
  await page.keyboard.press("ArrowRight");
  await page.mouse.click(at(10, 10).x, at(10, 10).y);
  await page.waitForFunction(() => window.testNode.__vanishEditor.loadingIndex === null);
  doc = await prompts(page);
  let st = await editorState(page);
  check("clicks on frame 1 go to object 1 frame 1", st.frame === 1 && doc.objects[0].frames["1"]?.positive?.length === 1, JSON.stringify(doc));
  check("prompted frames are marked on the slider", JSON.stringify(st.marks) === "[0,1]", JSON.stringify(st.marks));
  await page.click('.vanish-editor button[data-action="clear"]'); // "clear frame" (frame 1)
  doc = await prompts(page);
  check("clear frame empties only this frame", !doc.objects[0].frames["1"] && !!doc.objects[0].frames["0"], JSON.stringify(doc));
  if (SHOTS) {
    await page.keyboard.press("ArrowLeft");
    await page.waitForFunction(() => window.testNode.__vanishEditor.cache.has(0));
    await page.locator("#host").screenshot({ path: join(SHOTS, "editor_objects.png") });
  }
  await page.click('.vanish-editor button[data-action="clear-all"]');
  doc = await prompts(page);
  check("clear all leaves no objects", Array.isArray(doc.objects) && doc.objects.length === 0, JSON.stringify(doc));
}

async function testRoundTrip(page) {
  const text = JSON.stringify({ version: 1, image_size: [640, 360], objects: [
    { id: 4, name: "rider", frames: { 0: { positive: [[320, 180]] }, 5: { boxes: [[10, 20, 110, 220]], negative: [[50, 60]] } } },
    { id: 9, frames: { 12: { positive: [[1, 2]] } } }] }, null, 2);
  await setup(page, { prompts: text, frameW: 320, frameH: 180 });
  let st = await editorState(page);
  check("hand-written JSON: objects listed", JSON.stringify(st.ids) === "[4,9]", JSON.stringify(st.ids));
  check("hand-written JSON: prompted frames marked", JSON.stringify(st.marks) === "[0,5,12]", JSON.stringify(st.marks));
  check("loading does not rewrite the JSON", (await page.evaluate(() => window.testNode.widgets[0].value)) === text);
  // points in image_size coordinates are drawn scaled onto the 320x180 frame
  const geo = await canvasGeometry(page);
  const mid = screenOf(geo, 640, 360, 320, 180);
  const px = await pixelAt(page, mid.x + 3.5, mid.y + 3.5);
  check("a 640x360 point is drawn at the same place on a 320x180 frame", px[0] > 200 && px[1] < 120, JSON.stringify(px));
  // clicks are stored in the JSON's image_size coordinates
  const q = screenOf(geo, 640, 360, 100, 300);
  await page.mouse.click(q.x, q.y);
  let doc = await prompts(page);
  const added = doc.objects[0].frames["0"].positive[1] || [];
  check("new clicks use the JSON's image_size", near(added[0], 100, 1.1) && near(added[1], 300, 1.1), JSON.stringify(added));
  check("the rest of the JSON is kept", doc.objects[0].name === "rider" && JSON.stringify(doc.objects[0].frames["5"].boxes) === "[[10,20,110,220]]" && doc.objects[1].id === 9 && JSON.stringify(doc.image_size) === "[640,360]", JSON.stringify(doc));
  // a hand edit is picked up by the editor
  await page.evaluate(() => {
    const w = window.testNode.widgets[0];
    const d = JSON.parse(w.value);
    d.objects.push({ id: 11, frames: { 3: { positive: [[5, 5]] } } });
    w.value = JSON.stringify(d);
  });
  await page.waitForFunction(() => window.testNode.__vanishEditor.objectSelect.options.length === 3, null, { timeout: 3000 });
  st = await editorState(page);
  check("a hand edit shows up in the editor", JSON.stringify(st.ids) === "[4,9,11]" && JSON.stringify(st.marks) === "[0,3,5,12]", JSON.stringify(st));
  // broken JSON is never overwritten by a click
  await page.evaluate(() => { window.testNode.widgets[0].value = '{"version": 1, "objects": [ oops'; });
  await page.waitForFunction(() => !!window.testNode.__vanishEditor.docError, null, { timeout: 3000 });
  await page.mouse.click(q.x, q.y);
  check("broken JSON is left alone and reported", (await page.evaluate(() => window.testNode.widgets[0].value)) === '{"version": 1, "objects": [ oops'
    && (await editorState(page)).status.includes("not valid"), (await editorState(page)).status);
  // the node's placeholder value is replaced by the first click
  const example = '{\n "version": 1,\n "objects": [\n  {\n   "id": 1,\n   "name": "object",\n   "frames": {\n    "0": {\n     "positive": [\n      [\n       100,\n       100\n      ]\n     ]\n    }\n   }\n  }\n ]\n}';
  await setup(page, { prompts: example, frameW: 320, frameH: 180 });
  const g2 = await canvasGeometry(page);
  const r = screenOf(g2, 320, 180, 30, 40);
  await page.mouse.click(r.x, r.y);
  doc = await prompts(page);
  check("the example click is replaced, not kept", doc.objects.length === 1 && doc.objects[0].frames["0"].positive.length === 1 && !doc.objects[0].name, JSON.stringify(doc));
}

async function testScrubbing(page) {
  await setup(page, { loaderWidgets: { video: "sub/clip.mp4", skip_first_frames: 5, select_every_nth: 3, frame_load_cap: 30, force_rate: 12.5 }, count: 30 });
  const first = await page.evaluate(() => window.vanishStub.requests.slice(0, 2));
  check("video_info asked with the loader's file and selection", first[0] === "/vanish/video_info?file=sub%2Fclip.mp4&skip_first=5&cap=30&every_nth=3&force_rate=12.5&width=0&height=0", first[0]);
  check("frame 0 asked with the same selection", first[1] === "/vanish/frame?file=sub%2Fclip.mp4&skip_first=5&cap=30&every_nth=3&force_rate=12.5&width=0&height=0&index=0&max_side=1280", first[1]);
  await page.evaluate(() => {
    const s = document.querySelector(".vanish-editor input[type=range]");
    s.value = "7";
    s.dispatchEvent(new Event("input"));
  });
  await page.waitForFunction(() => window.testNode.__vanishEditor.cache.has(7));
  await page.click(".vanish-editor canvas", { position: { x: 2, y: 2 } }); // focus (a click on the bar adds nothing)
  check("clicks leave the keyboard focus on the slider (ComfyUI's shortcuts skip inputs)",
    await page.evaluate(() => document.activeElement === document.querySelector(".vanish-editor input[type=range]")));
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("Shift+ArrowRight");
  await page.waitForFunction(() => window.testNode.__vanishEditor.cache.has(18) && window.testNode.__vanishEditor.loadingIndex === null);
  const idx = await page.evaluate(() => window.vanishStub.requests.filter((r) => r.startsWith("/vanish/frame")).map((r) => Number(new URL(r, "http://x").searchParams.get("index"))));
  check("slider and arrow keys request frames 7, 8, 18", JSON.stringify(idx) === "[0,7,8,18]", JSON.stringify(idx));
  await page.keyboard.press("Shift+ArrowRight");
  await page.keyboard.press("Shift+ArrowRight");
  let st = await editorState(page);
  check("arrow keys stop at the last frame", st.frame === 29 && st.slider === "29", JSON.stringify(st));
  // fast scrubbing: every step shown, only the newest pending frame fetched
  await page.evaluate(() => {
    const s = document.querySelector(".vanish-editor input[type=range]");
    for (let i = 0; i <= 25; i += 1) { s.value = String(i); s.dispatchEvent(new Event("input")); }
  });
  await page.waitForFunction(() => window.testNode.__vanishEditor.cache.has(25) && window.testNode.__vanishEditor.loadingIndex === null);
  const later = await page.evaluate(() => window.vanishStub.requests.filter((r) => r.startsWith("/vanish/frame")).slice(5).map((r) => Number(new URL(r, "http://x").searchParams.get("index"))));
  check("fast scrubbing skips frames it no longer needs", later.at(-1) === 25 && later.length < 10, JSON.stringify(later));
  // changing the loader's selection reloads the clip
  await page.evaluate(() => { window.graphNodes.find((n) => n.id === 3).widgets.find((w) => w.name === "skip_first_frames").value = 6; });
  await page.waitForFunction(() => window.vanishStub.requests.some((r) => r.includes("skip_first=6&")), null, { timeout: 3000 });
  check("a loader change reloads the frames", true);
}

async function testPreviewAndRunFrames(page) {
  const W = 320, H = 180;
  await setup(page, { frameW: W, frameH: H });
  const geo = await canvasGeometry(page);
  const p = screenOf(geo, W, H, 250, 90);
  await page.mouse.click(p.x, p.y);
  await page.evaluate(() => { window.vanishStub.config.previewError = { error: "No SAM 2 model is loaded yet.", fix: "run the graph once." }; });
  await page.click('.vanish-editor button[data-action="preview"]');
  await page.waitForFunction(() => window.testNode.__vanishEditor.status.textContent.includes("No SAM 2"));
  check("preview without a model says so in the node", (await editorState(page)).status.includes("run the graph once"));
  const body = await page.evaluate(() => window.vanishStub.previewBodies[0]);
  check("preview sends the frame, index, prompts and colours", body.index === 0 && body.frame.file === "clip.mp4" && body.frame.index === 0
    && JSON.parse(body.prompts).objects[0].frames["0"].positive.length === 1 && JSON.stringify(body.colors["1"]) === "[255,64,64]", JSON.stringify(body));
  await page.evaluate(() => { window.vanishStub.config.previewError = null; });
  const spots = [[20, 150], [300, 150]].map(([x, y]) => screenOf(geo, W, H, x, y));
  const before = await Promise.all(spots.map((s) => pixelAt(page, s.x, s.y)));
  await page.check(".vanish-editor input[type=checkbox]");
  const q = screenOf(geo, W, H, 60, 90);
  await page.mouse.click(q.x, q.y);
  await page.waitForFunction(() => window.testNode.__vanishEditor.overlay, null, { timeout: 3000 });
  const after = await Promise.all(spots.map((s) => pixelAt(page, s.x, s.y)));
  const greener = (a, b) => (b[1] - b[0]) - (a[1] - a[0]);
  check("auto preview overlays the mask (left half) and nothing else", greener(before[0], after[0]) > 40
    && JSON.stringify(before[1]) === JSON.stringify(after[1]), `${before} -> ${after}`);
  if (SHOTS) await page.locator("#host").screenshot({ path: join(SHOTS, "editor_preview_stub.png") });

  // no loader: frames come from the node's last run (the "vanish.run_frames" event)
  await page.evaluate(() => window.setupEditor({ loader: false, frameW: 200, frameH: 100, count: 3 }));
  await page.waitForFunction(() => window.testNode.__vanishEditor.status.textContent.includes("run the graph once"));
  check("no loader and no run: the node says how to get frames", true);
  await page.evaluate(() => {
    const refs = [0, 1, 2].map((t) => ({ filename: `run_abc_${String(t).padStart(5, "0")}.jpg`, subfolder: "vanish_editor", type: "temp" }));
    window.vanishApi.dispatchEvent(new CustomEvent("vanish.run_frames", { detail: { node: "7", vanish_frames: refs, vanish_frame_size: [200, 100] } }));
  });
  await page.waitForFunction(() => window.testNode.__vanishEditor.cache.has(0), null, { timeout: 3000 });
  const req = await page.evaluate(() => window.vanishStub.requests.at(-1));
  check("run frames are fetched from /vanish/run_frame", req === "/vanish/run_frame?filename=run_abc_00000.jpg&subfolder=vanish_editor", req);
  const st = await editorState(page);
  check("run frames: the node says where the frames come from", st.status === "Frames of the last run: 200x100, 3 frames", st.status);
  check("run frames: slider covers the run's frames", (await page.evaluate(() => document.querySelector(".vanish-editor input[type=range]").max)) === "2", JSON.stringify(st));
  // after a page reload the node's output is cached: the editor asks the server for the last run
  await page.evaluate(() => {
    const refs = [0, 1, 2, 3].map((t) => ({ filename: `run_def_${String(t).padStart(5, "0")}.jpg`, subfolder: "vanish_editor", type: "temp" }));
    window.vanishStub.storedRuns["8"] = { vanish_frames: refs, vanish_frame_size: [200, 100] };
  });
  await page.evaluate(() => window.setupEditor({ loader: false, frameW: 200, frameH: 100, count: 4 }));
  await page.evaluate(() => { window.testNode.id = 8; }); // ids are given when the node joins the graph
  await page.waitForFunction(() => window.testNode.__vanishEditor.cache.has(0), null, { timeout: 3000 });
  const asked = await page.evaluate(() => window.vanishStub.requests.filter((r) => r.startsWith("/vanish/run_frame")));
  check("a reloaded page finds the last run's frames", JSON.stringify(asked) === JSON.stringify(["/vanish/run_frames?node=8", "/vanish/run_frame?filename=run_def_00000.jpg&subfolder=vanish_editor"]), JSON.stringify(asked));
}

async function testDefaultsIdsAndStatus(page) {
  // a new node: room for a canvas at least 512 px wide at 100 % zoom
  await setup(page, { frameW: 320, frameH: 180 });
  await page.waitForFunction(() => window.testNode.size[0] !== 400, null, { timeout: 3000 });
  const size = await page.evaluate(() => window.testNode.size);
  const minHeight = await page.evaluate(() => window.testNode.widgets.find((w) => w.name === "vanish_editor").options.getMinHeight());
  check("a new node opens large enough for the editor", size[0] >= 540 && size[1] >= 700 && minHeight >= 360,
    JSON.stringify({ size, minHeight }));
  // ComfyUI gives a DOM widget the node's width less 10 px each side
  await page.evaluate(([w, h]) => Object.assign(document.getElementById("host").style, { width: `${w - 20}px`, height: `${h}px` }),
    [size[0], minHeight]);
  const geo = await canvasGeometry(page);
  check("at 100 % zoom the new node's canvas is at least 512 px wide", geo.layoutW >= 512 && geo.layoutH >= 200, JSON.stringify(geo));

  // ids: "+ object" on a new node, and after "clear all", starts at 1
  await setup(page, { frameW: 320, frameH: 180 });
  let g = await canvasGeometry(page);
  let at = (fx, fy) => screenOf(g, 320, 180, fx, fy);
  await page.click('.vanish-editor button[data-action="new"]');
  await page.mouse.click(at(50, 50).x, at(50, 50).y);
  let doc = await prompts(page);
  check("a new node's first '+ object' is object 1", JSON.stringify(doc.objects.map((o) => o.id)) === "[1]", JSON.stringify(doc));
  await page.click('.vanish-editor button[data-action="new"]');
  await page.mouse.click(at(90, 50).x, at(90, 50).y);
  await page.click('.vanish-editor button[data-action="clear-all"]');
  await page.click('.vanish-editor button[data-action="new"]');
  await page.mouse.click(at(120, 80).x, at(120, 80).y);
  doc = await prompts(page);
  check("after 'clear all', '+ object' gives object 1", doc.objects.length === 1 && doc.objects[0].id === 1, JSON.stringify(doc));
  const st = await editorState(page);
  check("after 'clear all' the list shows object 1 only", JSON.stringify(st.ids) === "[1]", JSON.stringify(st.ids));
  await page.click('.vanish-editor button[data-action="new"]');
  await page.mouse.click(at(200, 80).x, at(200, 80).y);
  doc = await prompts(page);
  check("the next '+ object' is object 2", JSON.stringify(doc.objects.map((o) => o.id)) === "[1,2]", JSON.stringify(doc));

  // a long status message wraps instead of being cut off
  await page.evaluate(() => Object.assign(document.getElementById("host").style, { width: "420px", height: "420px" }));
  const long = "Frames: Load Video Frames: input 'path' points to /home/someone/ComfyUI/input/a_rather_long_folder_name/" +
    "with_a_clip_whose_name_does_not_fit_on_one_line_of_the_node.mp4, which does not exist. Fix: upload the video with the widget.";
  const box = await page.evaluate((text) => {
    const e = window.testNode.__vanishEditor;
    e.setStatus(text, true);
    const el = e.status;
    const r = el.getBoundingClientRect();
    const root = e.root.getBoundingClientRect();
    return { text: el.textContent, scrollW: el.scrollWidth, clientW: el.clientWidth, height: r.height,
      bottom: r.bottom, rootBottom: root.bottom, white: getComputedStyle(el).whiteSpace };
  }, long);
  check("a long status message wraps onto several lines, nothing cut off", box.text === long && box.white !== "nowrap"
    && box.scrollW <= box.clientW + 1 && box.height >= 3 * 14 && box.bottom <= box.rootBottom + 1, JSON.stringify(box));
}

// -------------------------------------------------------------------------------- main
const server = await serve();
const base = `http://127.0.0.1:${server.address().port}/`;
if (SHOTS) mkdirSync(SHOTS, { recursive: true });
if (!existsSync(CHROMIUM)) {
  console.log(`chromium not found at ${CHROMIUM}`);
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox",
  "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base);
  await page.waitForFunction(() => window.pageReady === true, null, { timeout: 15000 });
  for (const scenario of [testMapping, testEditing, testRoundTrip, testScrubbing, testPreviewAndRunFrames,
    testDefaultsIdsAndStatus]) {
    try {
      await scenario(page);
    } catch (err) {
      check(`${scenario.name} ran to the end`, false, err.stack || String(err));
    }
  }
  check("no page errors", errors.length === 0, errors.join("; "));
} finally {
  await browser.close();
  server.close();
}
console.log(failures ? `${failures} check(s) failed` : "all checks passed");
process.exit(failures ? 1 : 0);
