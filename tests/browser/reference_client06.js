// The 0.6 browser reference client (@hat-open/juggler 0.6.18) running the
// scenario of scenario_v07.js (0.6 has the same user layer, bare JSON frames).
import { Connection } from 'juggler-0.6';
import { run } from './scenario_v07.js';

run(Connection);
