// Calls searchSmart of Immich's own SDK, as a client built on it would:
//   node search.mjs <base URL ending in /api> <api key> '<SmartSearchDto as JSON>'
// Prints the answer as JSON, or {"status", "body"} when the server refuses.
import { init, searchSmart } from '@immich/sdk';

const [baseUrl, apiKey, dto] = process.argv.slice(2);
init({ baseUrl, apiKey });
try {
  const answer = await searchSmart({ smartSearchDto: JSON.parse(dto) });
  console.log(JSON.stringify(answer));
} catch (error) {
  console.log(JSON.stringify({ status: error.status, body: error.data ?? null }));
}
