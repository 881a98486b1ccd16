// The per-node rules of the Espruino gate: syntax Espruino rejects, built-ins it lacks, and the
// silent differences of PROFILE.md that can be seen without running the code.
import type { Variable } from 'eslint-scope';
import type {
  CallExpression, ClassBody, Identifier, MemberExpression, MethodDefinition, NewExpression, Node,
  ObjectExpression, Super, TemplateElement, ThrowStatement, TryStatement,
} from 'estree';
import { simple } from 'acorn-walk';
import type { GateContext } from './context.ts';
import { isEspruinoGlobal } from './espruino-globals.ts';
import { checkLoopClosure } from './hoisting.ts';
import {
  missingCallShapes, missingGlobals, missingInstanceMembers, missingStaticMembers, typeScriptHelperNames,
} from './missing-builtins.ts';
import { regExpProblems } from './regexp.ts';

type AnyClass = Extract<Node, { type: 'ClassDeclaration' | 'ClassExpression' }>;

/** State the post-passes need, gathered while walking. */
export interface WalkFacts {
  callSites: (CallExpression | NewExpression)[];
  /** `K.name` reads where K is a local class: checked for static inheritance at the end. */
  classMemberReads: { node: MemberExpression; classVariable: Variable; name: string }[];
  /** Static members assigned after a class (`K.s = 7`, esbuild's lowering of `static s = 7`). */
  assignedStatics: Map<Variable, Set<string>>;
  superCalls: { node: MemberExpression; method: MethodDefinition; classNode: AnyClass; name: string }[];
  /** Set by the caller: checks the code of an `eval("...")` as its own program. */
  checkEvalText: (text: string, at: Node) => void;
}

/** The property name of a member expression, when it is statically known. */
export function propertyName(node: MemberExpression): string | null {
  if (!node.computed && node.property.type === 'Identifier') return node.property.name;
  if (node.computed && node.property.type === 'Literal' && typeof node.property.value === 'string') return node.property.value;
  return null;
}

/** Own-property lookup in a table, so names like `toString` never match Object.prototype. */
function lookup<T>(table: Record<string, T>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

function isFalseLiteral(node: Node): boolean {
  if (node.type === 'Literal') return node.value === false || node.value === 0;
  // esbuild's minifier writes `false` as `!1`.
  return node.type === 'UnaryExpression' && node.operator === '!' && node.argument.type === 'Literal' && node.argument.value === 1;
}

function isNullish(node: Node): boolean {
  if (node.type === 'Literal' && node.value === null) return true;
  if (node.type === 'Identifier' && node.name === 'undefined') return true;
  return node.type === 'UnaryExpression' && node.operator === 'void';
}

function isStringExpression(node: Node): boolean {
  if (node.type === 'Literal') return typeof node.value === 'string';
  if (node.type === 'TemplateLiteral') return true;
  if (node.type === 'BinaryExpression' && node.operator === '+') {
    return isStringExpression(node.left as Node) || isStringExpression(node.right);
  }
  return false;
}

/** The class a variable is bound to (`class K {}` or esbuild's `var K = class {}`), if any. */
export function classOfVariable(variable: Variable | null): AnyClass | null {
  if (variable === null) return null;
  for (const definition of variable.defs) {
    if (definition.type === 'ClassName') return definition.node as AnyClass;
    if (definition.type === 'Variable' && definition.node.init?.type === 'ClassExpression') return definition.node.init;
  }
  return null;
}

/** The single value a `var`/`let`/`const` is initialised with, when it is never reassigned. */
function initialValueOf(context: GateContext, identifier: Identifier): Node | null {
  const variable = context.variableOf(identifier);
  if (variable === null || variable.defs.length !== 1) return null;
  const definition = variable.defs[0];
  if (definition?.type !== 'Variable' || !definition.node.init) return null;
  if (variable.references.some((reference) => reference.isWrite() && reference.writeExpr !== definition.node.init)) return null;
  return definition.node.init;
}

function isRegExpValue(context: GateContext, node: Node): boolean {
  if (node.type === 'Literal' && 'regex' in node) return true;
  if ((node.type === 'NewExpression' || node.type === 'CallExpression') && context.isGlobal(node.callee, 'RegExp')) return true;
  if (node.type === 'Identifier') {
    const value = initialValueOf(context, node);
    return value !== null && value !== node && isRegExpValue(context, value);
  }
  return false;
}

function isArrayBufferValue(context: GateContext, node: Node): boolean {
  if (node.type === 'NewExpression' && context.isGlobal(node.callee, 'ArrayBuffer')) return true;
  if (node.type === 'MemberExpression' && propertyName(node) === 'buffer') return true;
  if (node.type === 'Identifier') {
    const value = initialValueOf(context, node);
    return value !== null && value !== node && isArrayBufferValue(context, value);
  }
  return false;
}

/** Checks the char codes of a string as Espruino will see it; `raw` is its source text, if any. */
function checkStringValue(context: GateContext, node: Node, value: string, raw: string | undefined): void {
  for (let index = 0; index < value.length; index++) {
    const code = value.charCodeAt(index);
    if (code > 255) {
      context.report(node, 'wide-char', `string with char code ${code} > 255 (Espruino strings are bytes)`);
      return;
    }
  }
  if (raw !== undefined && /[^\x00-\x7f]/.test(raw)) {
    context.report(node, 'non-ascii-source', 'non-ASCII character in source text (Espruino reads UTF-8 source as bytes: write \\xNN)');
  }
}

function checkJsonText(context: GateContext, node: Node, text: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return;
  }
  const pending: unknown[] = [parsed];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      for (let index = 0; index < value.length; index++) {
        if (value.charCodeAt(index) > 255) {
          context.report(node, 'wide-char', `JSON text decodes to char code ${value.charCodeAt(index)} > 255 (Espruino strings are bytes)`);
          return;
        }
      }
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) pending.push(key, item);
    }
  }
}

function checkDescriptor(context: GateContext, descriptor: Node | undefined): void {
  if (descriptor?.type !== 'ObjectExpression') return;
  for (const property of descriptor.properties) {
    if (property.type !== 'Property' || property.computed || property.key.type !== 'Identifier') continue;
    if (property.key.name === 'enumerable' && isFalseLiteral(property.value)) {
      context.report(property, 'define-property', 'Object.defineProperty with enumerable: false (Espruino ignores it: the property is enumerable)');
    }
    if (property.key.name === 'writable' && isFalseLiteral(property.value)) {
      context.report(property, 'define-property', 'Object.defineProperty with writable: false (assigning it later throws on Espruino)');
    }
  }
}

function checkObjectKeyOrder(context: GateContext, node: ObjectExpression): void {
  // Node lists integer-like keys first in ascending order; Espruino keeps insertion order.
  const keys: string[] = [];
  for (const property of node.properties) {
    if (property.type !== 'Property' || property.computed) continue;
    if (property.key.type === 'Literal') keys.push(String(property.key.value));
    else if (property.key.type === 'Identifier') keys.push(property.key.name);
  }
  const isIndex = (key: string) => /^(0|[1-9][0-9]*)$/.test(key) && Number(key) < 4294967295;
  const nodeOrder = [...keys.filter(isIndex).sort((a, b) => Number(a) - Number(b)), ...keys.filter((key) => !isIndex(key))];
  if (nodeOrder.some((key, index) => key !== keys[index])) {
    context.report(node, 'object-key-order', 'object literal with integer keys out of order (Espruino keeps insertion order, Node sorts them first)');
  }
}

function nearestFunction(ancestors: Node[]): Node | null {
  for (let index = ancestors.length - 2; index >= 0; index--) {
    const node = ancestors[index] as Node;
    if (node.type === 'FunctionExpression' || node.type === 'FunctionDeclaration' || node.type === 'ArrowFunctionExpression') return node;
  }
  return null;
}

function checkSuper(context: GateContext, node: Super, ancestors: Node[], facts: WalkFacts): void {
  // `super` belongs to the nearest non-arrow function; it must be a class method.
  for (let index = ancestors.length - 2; index >= 0; index--) {
    const ancestor = ancestors[index] as Node;
    if (ancestor.type === 'ArrowFunctionExpression') continue;
    if (ancestor.type === 'FunctionExpression' || ancestor.type === 'FunctionDeclaration') {
      const owner = ancestors[index - 1];
      if (owner?.type !== 'MethodDefinition') {
        context.report(node, 'super-outside-class', "'super' outside a class method (Espruino: Calling 'super' outside of class)");
        return;
      }
      const classBody = ancestors[index - 2] as ClassBody;
      const classNode = ancestors[index - 3] as AnyClass;
      const parent = ancestors[ancestors.length - 2];
      if (classBody?.type === 'ClassBody' && parent?.type === 'MemberExpression' && parent.object === node) {
        const name = propertyName(parent);
        if (name !== null) facts.superCalls.push({ node: parent, method: owner, classNode, name });
      }
      return;
    }
    if (ancestor.type === 'PropertyDefinition' || ancestor.type === 'StaticBlock') return;
  }
}

function checkMember(context: GateContext, node: MemberExpression, ancestors: Node[], facts: WalkFacts): void {
  const name = propertyName(node);
  if (name === null) return;
  const object = node.object;
  const parent = ancestors[ancestors.length - 2];
  const isCallee = parent?.type === 'CallExpression' && parent.callee === node;
  const call = isCallee ? (parent as CallExpression) : null;

  if (object.type === 'Identifier' && context.isGlobal(object)) {
    const members = lookup(missingStaticMembers, object.name);
    const staticHint = members === undefined ? undefined : lookup(members, name);
    if (staticHint !== undefined) {
      context.report(node, 'missing-builtin', `${object.name}.${name} is missing on Espruino (${staticHint})`);
      return;
    }
    if (object.name === 'process' && name === 'exit') {
      context.report(node, 'missing-builtin', 'process.exit is missing on Espruino (quit() exists on Linux builds only)');
      return;
    }
  }
  if (object.type === 'MemberExpression' && propertyName(object) === 'prototype' && context.isGlobal(object.object, 'Array')) {
    context.report(node, 'array-prototype', `Array.prototype.${name} is undefined on Espruino (use [].${name})`);
    return;
  }
  const instanceHint = lookup(missingInstanceMembers, name);
  if (instanceHint !== undefined) {
    context.report(node, 'missing-builtin', `.${name} is missing on Espruino (${instanceHint})`);
    return;
  }
  if (/^setUTC/.test(name)) {
    context.report(node, 'missing-builtin', `Date .${name} is missing on Espruino (use the local setters: the device clock is UTC)`);
    return;
  }
  if (object.type === 'ArrayExpression' && ['keys', 'values', 'entries', 'at', 'lastIndexOf'].includes(name)) {
    context.report(node, 'missing-builtin', `array .${name} is missing on Espruino`);
    return;
  }
  if (node.property.type === 'PrivateIdentifier') {
    context.report(node.property, 'private-member', `#${node.property.name} private member (Espruino: syntax error)`);
    return;
  }
  if (call !== null) {
    for (const shape of missingCallShapes) {
      if (shape.name === name && shape.argumentCounts.includes(call.arguments.length) && !context.isGlobal(object, 'Object')) {
        context.report(node, 'missing-builtin', `.${name}() is missing on Espruino (${shape.hint})`);
        return;
      }
    }
    if (name === 'lastIndexOf' && !isStringExpression(object)) {
      context.report(node, 'missing-builtin', ".lastIndexOf is missing on Espruino arrays (loop from the end; on a string write (''+s).lastIndexOf)");
      return;
    }
    if (name === 'slice' && isArrayBufferValue(context, object)) {
      context.report(node, 'missing-builtin', 'ArrayBuffer .slice is missing on Espruino (copy through a Uint8Array: new Uint8Array(buf).slice)');
      return;
    }
    if (name === 'split' && call.arguments.length >= 2) {
      context.report(node, 'split-limit', 'split(separator, limit): Espruino ignores the limit');
      return;
    }
    if (context.isGlobal(object, 'JSON') && name === 'parse') {
      if (call.arguments.length >= 2) context.report(node, 'json-reviver', 'JSON.parse reviver (Espruino silently ignores it)');
      const text = call.arguments[0];
      if (text?.type === 'Literal' && typeof text.value === 'string') checkJsonText(context, text, text.value);
      return;
    }
    if (context.isGlobal(object, 'JSON') && name === 'stringify') {
      const replacer = call.arguments[1];
      const indent = call.arguments[2];
      const value = call.arguments[0];
      if (value !== undefined && isNullish(value) && !(value.type === 'Literal')) {
        context.report(node, 'json-undefined', 'JSON.stringify(undefined) (Espruino returns "null", not undefined)');
      }
      if (replacer !== undefined && !isNullish(replacer)) context.report(node, 'json-replacer', 'JSON.stringify replacer (Espruino silently ignores it)');
      if (indent !== undefined && !isNullish(indent)) context.report(node, 'json-indent', 'JSON.stringify indentation (Espruino formats it differently)');
      return;
    }
    if (context.isGlobal(object, 'Object')) {
      if (name === 'create' && call.arguments.length >= 2) {
        context.report(node, 'object-create', 'Object.create with property descriptors (Espruino: propertiesObject is not supported)');
      } else if (name === 'create' && call.arguments[0] !== undefined && isNullish(call.arguments[0])) {
        context.report(node, 'object-create', 'Object.create(null) (Espruino still gives it Object.prototype members)');
      } else if (name === 'defineProperty') {
        checkDescriptor(context, call.arguments[2] as Node | undefined);
      } else if (name === 'defineProperties' && call.arguments[1]?.type === 'ObjectExpression') {
        for (const property of call.arguments[1].properties) {
          if (property.type === 'Property') checkDescriptor(context, property.value);
        }
      } else if (name === 'keys' && call.arguments[0]?.type === 'MemberExpression' && propertyName(call.arguments[0]) === 'prototype') {
        context.report(node, 'class-methods-enumerable', 'Object.keys of a prototype (class methods are enumerable on Espruino)');
      }
      return;
    }
    if (context.isGlobal(object, 'Promise') && name === 'reject' && parent !== undefined) {
      const statement = ancestors[ancestors.length - 3];
      if (statement?.type === 'ExpressionStatement') {
        context.report(node, 'unhandled-rejection', 'Promise.reject(...) with no handler (an unhandled rejection is an uncaught error on Espruino)');
      }
      return;
    }
    if (name === 'toString' && object.type === 'NewExpression' && context.isGlobal(object.callee, 'Date')) {
      context.report(node, 'date-string', 'Date toString (Espruino prints a different format: use toISOString)');
      return;
    }
  }
  if (['global', 'ignoreCase', 'multiline', 'sticky', 'unicode', 'dotAll', 'hasIndices'].includes(name) && isRegExpValue(context, object)) {
    context.report(node, 'regexp-flag-property', `RegExp .${name} is undefined on Espruino (read .flags)`);
    return;
  }
  if (name === 'name' && object.type === 'Identifier') {
    const variable = context.variableOf(object);
    const catchDefinition = variable?.defs.find((definition) => definition.type === 'CatchClause');
    if (catchDefinition !== undefined && !throwsOwnErrors(context, catchDefinition.node)) {
      context.report(node, 'error-name', 'error .name of a caught error (errors thrown by Espruino have no .name)');
      return;
    }
  }
  if (name === 'name' && object.type === 'NewExpression' && object.callee.type === 'Identifier' && /Error$/.test(object.callee.name) && context.isGlobal(object.callee)) {
    context.report(node, 'error-name', `new ${object.callee.name}().name (built-in errors have no .name on Espruino)`);
    return;
  }
  if (object.type === 'Identifier') {
    const classVariable = context.variableOf(object);
    if (classVariable !== null && classOfVariable(classVariable) !== null) {
      const assignment = ancestors[ancestors.length - 2];
      if (assignment?.type === 'AssignmentExpression' && assignment.left === node) {
        const statics = facts.assignedStatics.get(classVariable) ?? new Set<string>();
        statics.add(name);
        facts.assignedStatics.set(classVariable, statics);
      } else {
        facts.classMemberReads.push({ node, classVariable, name });
      }
    }
  }
}

/**
 * True when the `try` block of `catchClause` throws `new X()` with X defined in the program: then
 * the caught error may carry its own `.name` (probe `error-fn-prototype`), so `.name` is not refused.
 */
function throwsOwnErrors(context: GateContext, catchClause: Node): boolean {
  let tryBlock: Node | null = null;
  simple(context.program as unknown as import('acorn').Node, {
    TryStatement(node) {
      const statement = node as unknown as TryStatement;
      if (statement.handler === catchClause) tryBlock = statement.block;
    },
  });
  if (tryBlock === null) return false;
  let found = false;
  simple(tryBlock as unknown as import('acorn').Node, {
    ThrowStatement(node) {
      const argument = (node as unknown as ThrowStatement).argument;
      if (argument.type === 'NewExpression' && argument.callee.type === 'Identifier' && !context.isGlobal(argument.callee)) found = true;
    },
  });
  return found;
}

function checkCallOrNew(context: GateContext, node: CallExpression | NewExpression, facts: WalkFacts): void {
  facts.callSites.push(node);
  const callee = node.callee;
  if (node.type === 'CallExpression' && callee.type === 'Identifier') {
    const classNode = classOfVariable(context.variableOf(callee));
    if (classNode !== null) {
      context.report(node, 'class-call', `class '${callee.name}' called without new (Espruino runs it instead of throwing)`, [callee]);
    }
    if (context.isGlobal(callee, 'eval')) {
      const text = node.arguments[0];
      if (text?.type === 'Literal' && typeof text.value === 'string') facts.checkEvalText(text.value, node);
    }
    if (context.isGlobal(callee, 'String') && node.arguments[0]?.type === 'NewExpression' && context.isGlobal(node.arguments[0].callee, 'Date')) {
      context.report(node, 'date-string', 'String(new Date()) (Espruino prints a different format: use toISOString)');
    }
  }
  if ((context.isGlobal(callee, 'RegExp')) && node.arguments[0]?.type === 'Literal' && typeof node.arguments[0].value === 'string') {
    const flagsNode = node.arguments[1];
    const flags = flagsNode?.type === 'Literal' && typeof flagsNode.value === 'string' ? flagsNode.value : '';
    for (const problem of regExpProblems(node.arguments[0].value, flags)) context.report(node, 'regexp', problem);
  }
  if (node.type === 'NewExpression' && context.isGlobal(callee, 'DataView') && node.arguments.length === 2) {
    context.report(node, 'dataview-offset', 'new DataView(buffer, offset) without a length (Espruino reports a wrong byteLength: pass the length)');
  }
}

function checkClass(context: GateContext, node: AnyClass): void {
  if (node.superClass?.type === 'Identifier' && context.isGlobal(node.superClass)) {
    context.report(node.superClass, 'extends-builtin', `class extends built-in ${node.superClass.name} (broken on Espruino: wrap it instead)`);
  }
  for (const member of node.body.body) {
    if ((member.type === 'MethodDefinition' || member.type === 'PropertyDefinition') && member.computed) {
      context.report(member, 'computed-key', 'computed class member name [k] (Espruino: syntax error)');
    }
  }
}

/** Runs every per-node rule on `node` (called once per node, children first). */
export function checkNode(context: GateContext, node: Node, ancestors: Node[], facts: WalkFacts): void {
  const report = (rule: string, message: string, at: Node = node) => context.report(at, rule, message);
  switch (node.type) {
    case 'ObjectPattern':
    case 'ArrayPattern':
      report('destructuring', 'destructuring pattern (Espruino has no destructuring)');
      break;
    case 'SpreadElement': {
      const parent = ancestors[ancestors.length - 2];
      if (parent?.type === 'CallExpression' && parent.callee.type === 'Super' && node.argument.type === 'Identifier' && node.argument.name === 'arguments') {
        report('spread', 'spread ... in super(...arguments), which esbuild writes for a subclass with fields and no constructor (write the constructor)');
      } else {
        report('spread', 'spread ... (Espruino has no spread syntax)');
      }
      break;
    }
    case 'RestElement':
      if (ancestors[ancestors.length - 2]?.type !== 'ObjectPattern' && ancestors[ancestors.length - 2]?.type !== 'ArrayPattern') {
        report('rest', 'rest parameter ... (Espruino has no rest parameters: use arguments)');
      }
      break;
    case 'AssignmentPattern': {
      const parent = ancestors[ancestors.length - 2];
      if (parent !== undefined && 'params' in parent && (parent.params as Node[]).includes(node)) {
        report('default-parameter', 'default parameter value (Espruino: syntax error)');
      }
      break;
    }
    case 'BinaryExpression':
      if (node.left.type === 'PrivateIdentifier') report('private-member', `#${node.left.name} in (Espruino: syntax error)`);
      if (node.operator === '**') report('exponent', '** operator (Espruino: syntax error; use Math.pow)');
      break;
    case 'AssignmentExpression':
      if (node.operator === '**=') report('exponent', '**= operator (Espruino: syntax error; use Math.pow)');
      if (node.operator === '??=' || node.operator === '||=' || node.operator === '&&=') {
        report('logical-assignment', `${node.operator} operator (Espruino: syntax error)`);
      }
      if (node.left.type === 'MemberExpression' && propertyName(node.left) === 'length') {
        report('length-assignment', 'assignment to .length (throws on Espruino arrays: use splice)');
      }
      break;
    case 'PropertyDefinition':
    case 'MethodDefinition':
      if (node.key.type === 'PrivateIdentifier') report('private-member', `#${node.key.name} private member (Espruino: syntax error)`);
      break;
    case 'ChainExpression':
      report('optional-chaining', 'optional chaining ?. (Espruino: syntax error)');
      break;
    case 'Property':
      if (node.computed) report('computed-key', 'computed property key {[k]: v} (Espruino: syntax error)');
      break;
    case 'ObjectExpression':
      checkObjectKeyOrder(context, node);
      break;
    case 'TaggedTemplateExpression':
      report('tagged-template', 'tagged template (Espruino: syntax error)');
      break;
    case 'FunctionDeclaration':
    case 'FunctionExpression':
    case 'ArrowFunctionExpression':
      if (node.async) report('async', 'async function (Espruino has no async/await: use Promise then)');
      if (node.generator) report('generator', 'generator function* (Espruino: syntax error)');
      if (node.type === 'FunctionDeclaration' && node.id !== null && typeScriptHelperNames.includes(node.id.name)) {
        report('typescript-helper', `TypeScript helper ${node.id.name} (breaks on Espruino)`);
      }
      break;
    case 'AwaitExpression':
      report('async', 'await (Espruino has no async/await)');
      break;
    case 'YieldExpression':
      report('generator', 'yield (Espruino has no generators)');
      break;
    case 'LabeledStatement':
      report('label', `labelled statement '${node.label.name}:' (Espruino: not supported)`);
      break;
    case 'MetaProperty':
      report('meta-property', `${node.meta.name}.${node.property.name} (Espruino: syntax error)`);
      break;
    case 'PrivateIdentifier':
      report('private-member', `#${node.name} private member (Espruino: syntax error)`);
      break;
    case 'StaticBlock':
      report('static-block', 'static { } block in a class (not supported by Espruino)');
      break;
    case 'WithStatement':
      report('with', "with statement (Espruino: 'with' is not defined)");
      break;
    case 'ImportDeclaration':
    case 'ExportNamedDeclaration':
    case 'ExportDefaultDeclaration':
    case 'ExportAllDeclaration':
    case 'ImportExpression':
      report('module-syntax', `${node.type} (Espruino runs scripts, not modules)`);
      break;
    case 'Literal':
      if ('bigint' in node && node.bigint !== undefined) report('bigint', 'BigInt literal (Espruino: syntax error)');
      else if ('regex' in node && node.regex !== undefined) {
        for (const problem of regExpProblems(node.regex.pattern, node.regex.flags)) report('regexp', problem);
      } else if (typeof node.value === 'string') checkStringValue(context, node, node.value, node.raw);
      break;
    case 'TemplateElement': {
      const element = node as TemplateElement;
      if (element.value.cooked !== null && element.value.cooked !== undefined) checkStringValue(context, node, element.value.cooked, element.value.raw);
      break;
    }
    case 'ExpressionStatement':
      if ('directive' in node && node.directive === 'use strict') report('use-strict', "'use strict' (Espruino ignores it)");
      break;
    case 'Super':
      checkSuper(context, node, ancestors, facts);
      break;
    case 'ClassDeclaration':
    case 'ClassExpression':
      checkClass(context, node);
      break;
    case 'MemberExpression':
      checkMember(context, node, ancestors, facts);
      break;
    case 'CallExpression':
    case 'NewExpression':
      checkCallOrNew(context, node, facts);
      break;
    case 'ForStatement':
      if (node.init?.type === 'VariableDeclaration') checkLoopClosure(context, node.init);
      break;
    case 'ForInStatement':
    case 'ForOfStatement':
      if (node.left.type === 'VariableDeclaration') checkLoopClosure(context, node.left);
      if (node.type === 'ForOfStatement' && node.await) report('async', 'for await (Espruino has no async iteration)');
      break;
    case 'Identifier':
      checkIdentifier(context, node, ancestors);
      break;
    default:
      break;
  }
}

function checkIdentifier(context: GateContext, node: Identifier, ancestors: Node[]): void {
  if (context.isGlobal(node)) {
    const hint = lookup(missingGlobals, node.name);
    const parent = ancestors[ancestors.length - 2];
    if (hint !== undefined) context.report(node, 'missing-global', `${node.name} is missing on Espruino (${hint})`);
    else if (node.name === 'Uint8ClampedArray') context.report(node, 'clamped-array', 'Uint8ClampedArray rounds differently on Espruino (1.5 becomes 1)');
    else if (context.refuseUndeclared && !isEspruinoGlobal(node.name) && !(parent?.type === 'UnaryExpression' && parent.operator === 'typeof')) {
      // `typeof x` of an undeclared name is legal (a feature test); reading or writing it is not.
      context.report(node, 'unknown-global', `'${node.name}' is declared nowhere in the code and is no Espruino global (a missing import?)`, [node]);
    }
  }
  if (typeScriptHelperNames.includes(node.name) && context.referenceOf(node) !== undefined) {
    context.report(node, 'typescript-helper', `TypeScript helper ${node.name} (breaks on Espruino)`);
  }
  if (node.name === 'arguments' && context.referenceOf(node) !== undefined) {
    const owner = nearestFunction(ancestors);
    if (owner?.type === 'ArrowFunctionExpression') {
      context.report(node, 'arrow-arguments', "'arguments' inside an arrow function (on Espruino it is the arrow's own)");
    }
  }
}

/** Checks that need the whole walk: static inheritance and super chains between local classes. */
export function checkClassRelations(context: GateContext, facts: WalkFacts): void {
  const superclassOf = (classNode: AnyClass): AnyClass | null =>
    classNode.superClass?.type === 'Identifier' ? classOfVariable(context.variableOf(classNode.superClass)) : null;
  const staticNames = (classNode: AnyClass): Set<string> => {
    const names = new Set<string>();
    for (const member of classNode.body.body) {
      if ((member.type === 'MethodDefinition' || member.type === 'PropertyDefinition') && member.static && !member.computed && member.key.type === 'Identifier') {
        names.add(member.key.name);
      }
    }
    return names;
  };
  const variableOfClass = new Map<AnyClass, Variable>();
  for (const read of facts.classMemberReads) variableOfClass.set(classOfVariable(read.classVariable) as AnyClass, read.classVariable);
  for (const variable of facts.assignedStatics.keys()) variableOfClass.set(classOfVariable(variable) as AnyClass, variable);
  const allStatics = (classNode: AnyClass): Set<string> => {
    const names = staticNames(classNode);
    const variable = variableOfClass.get(classNode);
    for (const name of (variable && facts.assignedStatics.get(variable)) ?? []) names.add(name);
    return names;
  };
  const ignored = new Set(['prototype', 'name', 'length', 'call', 'apply', 'bind', 'toString']);
  for (const read of facts.classMemberReads) {
    const classNode = classOfVariable(read.classVariable) as AnyClass;
    if (ignored.has(read.name) || allStatics(classNode).has(read.name)) continue;
    let ancestor = superclassOf(classNode);
    for (let depth = 0; ancestor !== null && depth < 32; depth++) {
      if (allStatics(ancestor).has(read.name)) {
        context.report(read.node, 'static-inheritance', `static '${read.name}' read through a subclass (Espruino does not inherit static members: name the class that defines it)`);
        break;
      }
      ancestor = superclassOf(ancestor);
    }
  }
  const methodsWithSuper = new Set(facts.superCalls.map((call) => call.method));
  for (const call of facts.superCalls) {
    let ancestor = superclassOf(call.classNode);
    for (let depth = 0; ancestor !== null && depth < 32; depth++) {
      const method = ancestor.body.body.find(
        (member): member is MethodDefinition =>
          member.type === 'MethodDefinition' && !member.computed && member.key.type === 'Identifier' && member.key.name === call.name && member.static === call.method.static,
      );
      if (method !== undefined) {
        if (methodsWithSuper.has(method)) {
          context.report(call.node, 'super-chain', `super.${call.name}() calls a method that calls super again (a chain of three overflows the stack on Espruino)`);
        }
        break;
      }
      ancestor = superclassOf(ancestor);
    }
  }
}
