// The 0.7 browser reference client (@hat-open/juggler 0.7.0) running the
// scenario of scenario_v07.js.
import { Connection } from 'juggler-0.7';
import { run } from './scenario_v07.js';

run(Connection);
