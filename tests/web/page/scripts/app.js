// Stand-in for ComfyUI's scripts/app.js: records registered extensions (see ../index.html).
export const app = {
  extensions: [],
  registerExtension(extension) {
    this.extensions.push(extension);
  },
};
