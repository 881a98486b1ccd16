// Every limit of Tandem, declared once, units last (TigerBeetle `constants.zig`). Device and cloud
// both import this file; a limit that only one side enforces still lives here so the two never
// disagree. Add new limits to the section they belong to.

// Build
/** The minified firmware bundle may not grow past this (checked by `npm run build`). */
export const firmwareBundleBytesMax = 24 * 1024;
