// Safe property mangling for the firmware bundle: which property names may be shortened, and to
// what. Only `private` class members qualify, minus every name the outside world could also use.
import { dirname, resolve } from 'node:path';
import ts from 'typescript';

/** Why a private member keeps its name (the first reason found). */
export type KeepReason = string;

export interface MangleAnalysis {
  /** Original name -> short name, for esbuild's `mangleCache`; sorted by original name. */
  cache: Record<string, string>;
  /** Every private member name found in the project sources. */
  privateNames: string[];
  /** Candidate names (private members; in 'internal' scope all project properties) that keep their name, with the reason. */
  kept: Record<string, KeepReason>;
  /** Names that must never be produced or mangled: public members, built-ins, API names. */
  reserved: Set<string>;
  /** Property names the sources read (`o.x` not being assigned, `o['x']`). */
  readNames: Set<string>;
  /** Property names of values that meet the outside (JSON, APIs, enumeration, open types, string keys), with the first place found. */
  crossing: Map<string, string>;
}

/** Words a short name must never be: Espruino's parser treats some as keywords even after a dot. */
const keywords = new Set(
  ('break case catch class const continue debugger default delete do else enum export extends false finally for function ' +
    'if import in instanceof let new null return super switch this throw true try typeof var void while with yield ' +
    'await implements interface package private protected public static undefined NaN Infinity arguments eval').split(' '),
);

/**
 * Property names of JavaScript's built-ins as this Node sees them: every global, its own
 * properties and those of its prototype (two levels). A superset of Espruino's: keeping a name
 * too many costs bytes, never correctness.
 */
export function builtinPropertyNames(): Set<string> {
  const names = new Set<string>();
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): void => {
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) return;
    seen.add(value);
    for (const name of Object.getOwnPropertyNames(value)) {
      names.add(name);
      if (depth > 0) {
        let child: unknown;
        try {
          child = (value as Record<string, unknown>)[name];
        } catch {
          continue;
        }
        visit(child, depth - 1);
      }
    }
    visit(Object.getPrototypeOf(value), depth);
  };
  visit(globalThis, 2);
  // Instances carry own properties no prototype lists.
  for (const sample of [[], '', /x/g, new Error('x'), function named() {}, new Uint8Array(1), new DataView(new ArrayBuffer(1)), Promise.resolve()]) visit(sample, 1);
  return names;
}

function isPrivate(node: ts.Node): boolean {
  const modifiers = ts.canHaveModifiers(node) ? ts.getModifiers(node) : undefined;
  return modifiers !== undefined && modifiers.some((modifier) => modifier.kind === ts.SyntaxKind.PrivateKeyword);
}

function memberName(name: ts.PropertyName | ts.BindingName | undefined): string | undefined {
  if (name === undefined) return undefined;
  if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name) || ts.isPrivateIdentifier(name)) return name.text;
  return undefined;
}

const identifierLike = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * A string literal that may name a property: `o['x']`, `'x' in o`, an argument to code outside the
 * project (Object.defineProperty(o, 'x', ...)), or compared with (`key === 'x'`, `case 'x':`). Text
 * stored as data (a template's field name) is not: a key built from it at run time meets an
 * indexed or enumerated object, whose members keep their names (see the index rule).
 */
function isKeyPosition(node: ts.Node): boolean {
  let at = node;
  while (ts.isParenthesizedExpression(at.parent)) at = at.parent;
  const parent = at.parent;
  if (ts.isElementAccessExpression(parent) && parent.argumentExpression === at) return true;
  if (ts.isBinaryExpression(parent)) {
    const op = parent.operatorToken.kind;
    return op === ts.SyntaxKind.InKeyword || op === ts.SyntaxKind.EqualsEqualsEqualsToken || op === ts.SyntaxKind.EqualsEqualsToken ||
      op === ts.SyntaxKind.ExclamationEqualsEqualsToken || op === ts.SyntaxKind.ExclamationEqualsToken;
  }
  if (ts.isCaseClause(parent)) return true;
  if (ts.isCallExpression(parent) || ts.isNewExpression(parent)) return (parent.arguments ?? []).some((argument) => argument === at);
  return false;
}

function isNumberLike(type: ts.Type): boolean {
  if (type.isUnion()) return type.types.every(isNumberLike);
  return (type.flags & ts.TypeFlags.NumberLike) !== 0;
}

/** An expression that produces a value of an object type worth following (not a name being declared). */
function isValueExpression(node: ts.Node): node is ts.Expression {
  if (ts.isIdentifier(node)) {
    const parent = node.parent;
    if (ts.isPropertyAccessExpression(parent) && parent.name === node) return false;
    // A name being declared (variable, parameter, member, key), not a value; `{ x }` is both.
    if ((parent as { name?: ts.Node }).name === node && !ts.isShorthandPropertyAssignment(parent)) return false;
    if (ts.isTypeReferenceNode(parent) || ts.isQualifiedName(parent) || ts.isImportSpecifier(parent) || ts.isExportSpecifier(parent) || ts.isTypeQueryNode(parent)) return false;
    return true;
  }
  return ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node) || ts.isObjectLiteralExpression(node) || ts.isArrayLiteralExpression(node) ||
    ts.isNewExpression(node) || ts.isCallExpression(node) || ts.isConditionalExpression(node) || ts.isParenthesizedExpression(node) ||
    ts.isFunctionExpression(node) || ts.isArrowFunction(node) || node.kind === ts.SyntaxKind.ThisKeyword || ts.isBinaryExpression(node);
}

export interface AnalysisOptions {
  /** The bundle's entry: its file and every import it reaches are the project sources. */
  entry: string;
  /** tsconfig for compiler options and the project's files (tsconfig.firmware.json). */
  tsconfigPath: string;
  /**
   * 'private' (default): only private class members. 'internal': every property name the project
   * declares (public members, interface fields, object literal keys too) unless it can meet the
   * outside world: see analyseMangleableNames.
   */
  scope?: MangleScope;
}

export type MangleScope = 'private' | 'internal';

/** True for a file of the project (not a declaration file, not a dependency). */
function isProjectSource(file: ts.SourceFile): boolean {
  return !file.isDeclarationFile && !file.fileName.includes('/node_modules/');
}

/**
 * Finds the private members of the project's classes and decides which may be mangled. A name is
 * kept when it is also: a public member, interface or type member, object literal key or enum
 * member anywhere in the sources; a member declared in any declaration file (lib, @types/espruino,
 * espruino.d.ts); a JavaScript built-in property; a whole string literal (`o['name']`, `'name' in o`);
 * read from an untyped value; or a member of a class instance handed to code outside the project
 * (JSON.stringify, Storage.writeJSON ...), which would see the short names.
 */
export function analyseMangleableNames(options: AnalysisOptions): MangleAnalysis {
  const configFile = ts.readConfigFile(options.tsconfigPath, (path) => ts.sys.readFile(path));
  if (configFile.error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(configFile.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, dirname(options.tsconfigPath));
  // The entry and what it imports (what can be in the bundle), plus the project's declaration files.
  const roots = [resolve(options.entry), ...parsed.fileNames.filter((file) => file.endsWith('.d.ts'))];
  const program = ts.createProgram(roots, { ...parsed.options, noEmit: true });
  const checker = program.getTypeChecker();

  const scope = options.scope ?? 'private';
  // Candidates: private members; in 'internal' scope every property the project declares.
  const privateNames = new Map<string, number>();
  const candidates = new Map<string, number>();
  const kept: Record<string, KeepReason> = {};
  const reserved = new Set<string>();
  const readNames = new Set<string>();
  const passiveArguments = new Set<ts.Node>();
  const crossing = new Map<string, string>();
  const keep = (name: string | undefined, reason: string, crosses = false): void => {
    if (name === undefined) return;
    if (crosses && !crossing.has(name)) crossing.set(name, reason);
    reserved.add(name);
    if (!(name in kept)) kept[name] = reason;
  };
  // A project-declared public name: reserved in 'private' scope, a candidate in 'internal' scope.
  const declared = (name: string | undefined, reason: string): void => {
    if (name === undefined) return;
    if (scope === 'private') keep(name, reason);
    else if (identifierLike.test(name)) candidates.set(name, 0);
  };
  const where = (node: ts.Node): string => {
    const file = node.getSourceFile();
    const line = file.getLineAndCharacterOfPosition(node.getStart()).line + 1;
    return `${file.fileName.replace(/^.*?\/(firmware|\.tandem|test|scripts)\//, '$1/')}:${line}`;
  };
  const projectDeclaration = (declaration: ts.Declaration): boolean => isProjectSource(declaration.getSourceFile());
  const libFile = (file: ts.SourceFile): boolean => /\/typescript\/lib\//.test(file.fileName);

  /**
   * The members of a value that meets code outside the project keep their names: every project-
   * declared property of its type, and (the outside may read or fill them) of the types of those
   * properties, of array elements and of method and callback parameters and results.
   */
  const seenTypes = new Set<ts.Type>();
  const keepMembersOfType = (type: ts.Type, reason: string, depth: number): void => {
    if (depth > 6 || seenTypes.has(type)) return;
    seenTypes.add(type);
    try {
      if (type.isUnionOrIntersection()) {
        for (const part of type.types) keepMembersOfType(part, reason, depth + 1);
        return;
      }
      if (checker.isArrayType(type) || checker.isTupleType(type)) {
        for (const argument of checker.getTypeArguments(type as ts.TypeReference)) keepMembersOfType(argument, reason, depth + 1);
        return;
      }
      for (const signature of [...type.getCallSignatures(), ...type.getConstructSignatures()]) {
        for (const parameter of signature.getParameters()) keepMembersOfType(checker.getTypeOfSymbol(parameter), reason, depth + 1);
        keepMembersOfType(signature.getReturnType(), reason, depth + 1);
      }
      const symbol = type.getSymbol();
      // Lib types (Array, Uint8Array ...) carry no project names in their members.
      if (symbol !== undefined && (symbol.declarations ?? []).length > 0 && (symbol.declarations ?? []).every((d) => libFile(d.getSourceFile()))) return;
      for (const property of checker.getPropertiesOfType(type)) {
        const declarations = property.declarations ?? [];
        if (!declarations.some(projectDeclaration)) continue;
        keep(property.name, reason, true);
        keepMembersOfType(checker.getTypeOfSymbol(property), reason, depth + 1);
      }
    } finally {
      seenTypes.delete(type);
    }
  };

  /** A type whose values may hold any key: any, unknown, object, {}, a type parameter, an index signature. */
  const isOpen = (type: ts.Type): boolean => {
    if (type.isUnion()) return type.types.some(isOpen);
    if (type.flags & ts.TypeFlags.TypeParameter) {
      // `this` and constrained generics are what their constraint is; a bare T may be anything.
      const constraint = checker.getBaseConstraintOfType(type);
      return constraint === undefined || constraint === type || isOpen(constraint);
    }
    if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown | ts.TypeFlags.NonPrimitive)) return true;
    if (!(type.flags & ts.TypeFlags.Object)) return false;
    if (checker.isArrayType(type) || checker.isTupleType(type)) return false;
    if (checker.getIndexInfosOfType(type).length > 0) return true;
    return checker.getPropertiesOfType(type).length === 0 && type.getCallSignatures().length === 0 && type.getConstructSignatures().length === 0;
  };
  /** A type the Espruino API declares (espruino.d.ts, @types/espruino): its objects come from outside. */
  const isApiType = (type: ts.Type): boolean => {
    if (type.isUnion()) return type.types.some(isApiType);
    const symbol = type.aliasSymbol ?? type.getSymbol();
    const declarations = symbol?.declarations ?? [];
    return declarations.length > 0 && declarations.every((d) => !isProjectSource(d.getSourceFile()) && !libFile(d.getSourceFile()));
  };
  /** A value flowing from `from` into a place of type `to`: when one side is open or foreign, the other side's names are visible. */
  const flow = (from: ts.Type, to: ts.Type, reason: string): void => {
    if (isOpen(to) || isApiType(to)) keepMembersOfType(from, reason, 0);
    if (isOpen(from) || isApiType(from)) keepMembersOfType(to, reason, 0);
  };

  for (const file of program.getSourceFiles()) {
    if (!isProjectSource(file)) {
      // Every member a declaration file names is an API name: never mangle, never produce it.
      const visitDeclarations = (node: ts.Node): void => {
        if (
          ts.isPropertySignature(node) || ts.isMethodSignature(node) || ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) ||
          ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node) || ts.isEnumMember(node)
        ) {
          keep(memberName(node.name), `declared in ${file.fileName.replace(/^.*\/node_modules\//, '')}`);
        } else if ((ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node) || ts.isInterfaceDeclaration(node) || ts.isModuleDeclaration(node)) && node.name !== undefined) {
          // Globals and namespace members are properties too (globalThis.x, E.x).
          keep(memberName(node.name as ts.PropertyName), `declared in ${file.fileName.replace(/^.*\/node_modules\//, '')}`);
        } else if (ts.isVariableDeclaration(node)) {
          keep(memberName(node.name), `declared in ${file.fileName.replace(/^.*\/node_modules\//, '')}`);
        }
        ts.forEachChild(node, visitDeclarations);
      };
      visitDeclarations(file);
      continue;
    }
    const visit = (node: ts.Node): void => {
      if (
        (ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) &&
        ts.isClassLike(node.parent)
      ) {
        const name = memberName(node.name);
        if (name !== undefined) {
          if (isPrivate(node) && ts.isIdentifier(node.name)) privateNames.set(name, privateNames.get(name) ?? 0);
          else declared(name, `public member at ${where(node)}`);
        }
      } else if (ts.isParameter(node) && ts.isConstructorDeclaration(node.parent) && ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).length > 0) {
        // A parameter property (`constructor(private readonly x: T)`).
        const name = memberName(node.name);
        if (name !== undefined) {
          if (isPrivate(node)) privateNames.set(name, privateNames.get(name) ?? 0);
          else declared(name, `public parameter property at ${where(node)}`);
        }
      } else if (ts.isPropertySignature(node) || ts.isMethodSignature(node) || ts.isEnumMember(node)) {
        declared(memberName(node.name), `type member at ${where(node)}`);
      } else if (ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node)) {
        declared(memberName(node.name), `object literal key at ${where(node)}`);
      } else if ((ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) && ts.isObjectLiteralExpression(node.parent)) {
        declared(memberName(node.name), `object literal method at ${where(node)}`);
      } else if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && identifierLike.test(node.text) && isKeyPosition(node)) {
        keep(node.text, `string used as a key at ${where(node)}`, true);
      } else if (ts.isPropertyAccessExpression(node)) {
        const name = node.name.text;
        const parent = node.parent;
        const assigned = ts.isBinaryExpression(parent) && parent.left === node && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken;
        if (!assigned) readNames.add(name);
        const symbol = checker.getSymbolAtLocation(node.name);
        const declarations = symbol?.declarations ?? [];
        if (declarations.length === 0) keep(name, `read from an untyped value at ${where(node)}`);
        else if (declarations.some((declaration) => !isProjectSource(declaration.getSourceFile()))) keep(name, `API member at ${where(node)}`);
      } else if (ts.isForInStatement(node) || (ts.isElementAccessExpression(node) && !isNumberLike(checker.getTypeAtLocation(node.argumentExpression)))) {
        // Keys as strings see the real names: an object indexed by a string or enumerated keeps them.
        keepMembersOfType(checker.getTypeAtLocation(node.expression), `enumerated or indexed at ${where(node)}`, 0);
      } else if (ts.isCallExpression(node) || ts.isNewExpression(node)) {
        const signature = checker.getResolvedSignature(node);
        const declaration = signature?.declaration;
        // Espruino's API may read any key of what it is given; of the language's own library only
        // JSON, Object and the property tests do (Array.push, Math.floor ... do not look inside).
        const callee = ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) ? node.expression : undefined;
        const inspectingLib = callee !== undefined && (
          (/^(JSON|Object|Reflect)$/.test(callee.expression.getText()) && !/^(defineProperty|getPrototypeOf)$/.test(callee.name.text)) ||
          /^(hasOwnProperty|propertyIsEnumerable)$/.test(callee.name.text));
        const external = declaration === undefined || (!isProjectSource(declaration.getSourceFile()) && (!libFile(declaration.getSourceFile()) || inspectingLib));
        // Arguments of Array.isArray, push, Math.* ...: their `any` parameters read no keys.
        if (declaration !== undefined && libFile(declaration.getSourceFile()) && !inspectingLib) for (const argument of node.arguments ?? []) passiveArguments.add(argument);
        if (external) {
          for (const argument of node.arguments ?? []) {
            const type = checker.getTypeAtLocation(argument);
            // Anything may be read or enumerated; a callback's parameters are filled by the API.
            keepMembersOfType(type, `passed to an API at ${where(argument)}`, 0);
          }
        }
      }
      {
        if (ts.isAsExpression(node) || ts.isTypeAssertionExpression(node) || ts.isSatisfiesExpression(node)) {
          // `x as unknown as T` re-types x as T: the value goes nowhere, so compare x with T.
          const outer = ts.skipPartiallyEmittedExpressions(node.parent);
          const chained = ts.isAsExpression(outer) || ts.isTypeAssertionExpression(outer) || (ts.isParenthesizedExpression(outer) && ts.isAsExpression(outer.parent));
          if (!chained) {
            let inner: ts.Expression = node.expression;
            while (ts.isAsExpression(inner) || ts.isTypeAssertionExpression(inner) || ts.isParenthesizedExpression(inner) || ts.isSatisfiesExpression(inner)) inner = inner.expression;
            flow(checker.getTypeAtLocation(inner), checker.getTypeAtLocation(node), `cast at ${where(node)}`);
          }
        } else if (isValueExpression(node) && !passiveArguments.has(node) && !ts.isAsExpression(node.parent) && !ts.isTypeAssertionExpression(node.parent) && !ts.isSatisfiesExpression(node.parent)) {
          const contextual = checker.getContextualType(node);
          if (contextual !== undefined) flow(checker.getTypeAtLocation(node), contextual, `flows into a typed place at ${where(node)}`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }

  for (const name of privateNames.keys()) candidates.set(name, 0);
  // How often each name is used, so the most used get the shortest names.
  for (const file of program.getSourceFiles()) {
    if (!isProjectSource(file)) continue;
    const count = (node: ts.Node): void => {
      const name = ts.isPropertyAccessExpression(node) ? node.name.text : (ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node)) ? memberName(node.name) : undefined;
      if (name !== undefined && candidates.has(name)) candidates.set(name, (candidates.get(name) ?? 0) + 1);
      ts.forEachChild(node, count);
    };
    count(file);
  }

  for (const name of builtinPropertyNames()) keep(name, 'JavaScript built-in');
  for (const name of keywords) keep(name, 'keyword');

  const mangled = [...candidates.keys()].filter((name) => !reserved.has(name));
  mangled.sort((a, b) => (candidates.get(b) ?? 0) - (candidates.get(a) ?? 0) || (a < b ? -1 : a > b ? 1 : 0));
  const cache: Record<string, string> = {};
  const used = new Set<string>(reserved);
  for (const name of candidates.keys()) used.add(name);
  const next = shortNames(used);
  for (const name of mangled) cache[name] = next();
  const sortedCache: Record<string, string> = {};
  for (const name of Object.keys(cache).sort()) sortedCache[name] = cache[name]!;
  const keptPrivate: Record<string, KeepReason> = {};
  for (const name of [...candidates.keys()].sort()) if (name in kept) keptPrivate[name] = kept[name]!;
  return { cache: sortedCache, privateNames: [...privateNames.keys()].sort(), kept: keptPrivate, reserved, readNames, crossing };
}

/**
 * Short identifiers in a fixed order (a..z A..Z, then two characters ...), skipping every name in
 * `avoid`: a short name never equals a kept member, a built-in or an original private name, so
 * no object can end up with two meanings for one key.
 */
export function shortNames(avoid: Set<string>): () => string {
  const first = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$';
  const rest = first + '0123456789';
  let index = 0;
  const nameAt = (n: number): string => {
    if (n < first.length) return first[n]!;
    let value = n - first.length;
    let name = '';
    let length = 2;
    let block = first.length * rest.length;
    while (value >= block) {
      value -= block;
      length++;
      block *= rest.length;
    }
    for (let i = 1; i < length; i++) {
      name = rest[value % rest.length]! + name;
      value = Math.floor(value / rest.length);
    }
    return first[value]! + name;
  };
  return () => {
    for (;;) {
      const name = nameAt(index++);
      if (!avoid.has(name)) {
        avoid.add(name);
        return name;
      }
    }
  };
}
