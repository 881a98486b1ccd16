// The Espruino gate: parses JavaScript with acorn, resolves scopes with eslint-scope, and lists every
// construct that Espruino 2v2x rejects, lacks, or runs differently (see scripts/build/README.md).
import { parse } from 'acorn';
import { fullAncestor } from 'acorn-walk';
import { analyze } from 'eslint-scope';
import type { Node, Program } from 'estree';
import { GateContext, startOf, type Violation } from './context.ts';
import { checkHoisting } from './hoisting.ts';
import { checkClassRelations, checkNode, type WalkFacts } from './rules.ts';

export type { Violation } from './context.ts';

interface EvalPosition {
  line: number;
  column: number;
  offset: number;
}

function parseProgram(code: string): Program {
  // Script, not module: that is how Espruino runs the bundle (sloppy mode, `with` parses).
  return parse(code, { ecmaVersion: 'latest', sourceType: 'script', ranges: true, locations: true, allowHashBang: false }) as unknown as Program;
}

function check(code: string, options: GateOptions, evalPosition: EvalPosition | undefined, depth: number): Violation[] {
  let program: Program;
  try {
    program = parseProgram(code);
  } catch (error) {
    const syntaxError = error as SyntaxError & { pos?: number; loc?: { line: number; column: number } };
    const where = evalPosition ?? { line: syntaxError.loc?.line ?? 0, column: syntaxError.loc?.column ?? 0, offset: syntaxError.pos ?? 0 };
    return [{ rule: 'parse-error', message: `JavaScript that does not parse: ${syntaxError.message}`, ...where }];
  }
  // nodejsScope wraps the program in a function scope, so top-level declarations resolve
  // statically and only true globals stay unresolved.
  const scopeManager = analyze(program, { ecmaVersion: 2022, sourceType: 'script', nodejsScope: true });
  const context = new GateContext(code, program, scopeManager, options.refuseUndeclared ?? true, evalPosition);
  const facts: WalkFacts = {
    callSites: [],
    classMemberReads: [],
    assignedStatics: new Map(),
    superCalls: [],
    checkEvalText: (text: string, at: Node) => {
      if (depth >= 3) return;
      const loc = (at as Node & { loc: { start: { line: number; column: number } } }).loc.start;
      const position = evalPosition ?? { line: loc.line, column: loc.column, offset: startOf(at) };
      for (const violation of check(text, options, position, depth + 1)) {
        context.violations.push({ ...violation, message: `in eval text: ${violation.message}` });
      }
    },
  };
  fullAncestor(program as unknown as import('acorn').Node, (node, _state, ancestors) => {
    checkNode(context, node as unknown as Node, ancestors as unknown as Node[], facts);
  });
  checkHoisting(context, facts.callSites);
  checkClassRelations(context, facts);
  return context.violations;
}

export interface GateOptions {
  /**
   * Refuse names that are declared nowhere in the code and are no Espruino global (default true:
   * in a whole bundle such a name is a missing import). Off for checking fragments.
   */
  refuseUndeclared?: boolean;
}

/**
 * Lists what Espruino cannot run (or runs differently) in `code`, a script such as the firmware
 * bundle. Empty means the gate passes. Sorted by position; one entry per construct and place.
 */
export function checkEspruinoSource(code: string, options: GateOptions = {}): Violation[] {
  const violations = check(code, options, undefined, 0);
  const seen = new Set<string>();
  return violations
    .sort((a, b) => a.offset - b.offset || a.rule.localeCompare(b.rule))
    .filter((violation) => {
      const key = `${violation.offset}:${violation.rule}:${violation.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

/** One line per violation: `line:column  message [rule]`. */
export function formatViolation(violation: Violation): string {
  return `${violation.line}:${violation.column}  ${violation.message} [${violation.rule}]`;
}
