// Exhaustive power loss, many rotations: see state-power-loss.ts [STORE-1] [STORE-2] [STORE-3].
import { manyRotations, powerLossSuite } from './state-power-loss.ts';

powerLossSuite(manyRotations);
