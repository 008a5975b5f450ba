// A checkout's engine build on macOS, imported as a file (see ffi/lib.ts devLibrary): Bun gives
// its path, and `bun build --compile` embeds it. Not part of the npm package.
import path from "../zig-out/lib/libmlxbun.dylib" with { type: "file" };
export default path;
