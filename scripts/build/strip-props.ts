// Leaves documentation-only properties out of the device bundle: `description: '...'` and
// `unit: '...'` in template definitions are for the cloud and the schemas; the device never reads
// them. A name is stripped only when the source analysis proves nothing in the bundle reads it and
// no object holding it meets the outside (JSON, an API, enumeration: see mangle-names.ts).
import { readFileSync } from 'node:fs';
import type { Plugin } from 'esbuild';
import ts from 'typescript';
import type { MangleAnalysis } from './mangle-names.ts';

/** The properties the firmware bundle may drop when nothing reads them. */
export const documentationProps = ['description', 'unit'];

/** Which of `names` may be dropped, and why each other one may not. */
export function strippableProps(analysis: MangleAnalysis, names: string[]): { strip: string[]; kept: Record<string, string> } {
  const strip: string[] = [];
  const kept: Record<string, string> = {};
  for (const name of names) {
    if (analysis.readNames.has(name)) kept[name] = 'read by the firmware';
    else if (analysis.crossing.has(name)) kept[name] = `on a value that meets the outside (${analysis.crossing.get(name)})`;
    else strip.push(name);
  }
  return { strip, kept };
}

/**
 * The source text with every `name: 'literal'` object literal property of `names` blanked out
 * (with its comma). Blanks, not deletions: lines and columns stay, so the source map still points
 * at the right place. Only string literal values: dropping them runs no code.
 */
export function blankProps(fileName: string, text: string, names: Set<string>): { text: string; removed: number } {
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const ranges: Array<[number, number]> = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isPropertyAssignment(node) && ts.isObjectLiteralExpression(node.parent) && ts.isIdentifier(node.name) && names.has(node.name.text) &&
      (ts.isStringLiteral(node.initializer) || ts.isNoSubstitutionTemplateLiteral(node.initializer))
    ) {
      let end = node.end;
      // Take the comma after the property with it, when there is one.
      const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, text, undefined, node.end);
      if (scanner.scan() === ts.SyntaxKind.CommaToken) end = scanner.getTokenEnd();
      ranges.push([node.getStart(file), end]);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  if (ranges.length === 0) return { text, removed: 0 };
  let out = '';
  let at = 0;
  for (const [start, end] of ranges) {
    out += text.slice(at, start) + text.slice(start, end).replace(/[^\n\r]/g, ' ');
    at = end;
  }
  return { text: out + text.slice(at), removed: ranges.length };
}

/** An esbuild plugin that blanks `names` in the project's TypeScript files as they are loaded. */
export function stripPropsPlugin(names: string[], counter: { removed: number }): Plugin {
  const set = new Set(names);
  return {
    name: 'tandem-strip-props',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path.includes('/node_modules/') || args.path.endsWith('.d.ts')) return undefined;
        const result = blankProps(args.path, readFileSync(args.path, 'utf8'), set);
        counter.removed += result.removed;
        return { contents: result.text, loader: 'ts' };
      });
    },
  };
}
