// Exhaustive power loss, the board's geometry: see state-power-loss.ts [STORE-1] [STORE-2] [STORE-3].
import { boardGeometry, powerLossSuite } from './state-power-loss.ts';

powerLossSuite(boardGeometry);
