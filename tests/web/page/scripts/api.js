// Stand-in for ComfyUI's scripts/api.js: fetchApi is answered by window.vanishStub (../index.html).
class StubApi extends EventTarget {
  fetchApi(route, options = {}) {
    return window.vanishStub.fetchApi(route, options);
  }
}
export const api = new StubApi();
