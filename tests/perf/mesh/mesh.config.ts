// GraphQL Mesh v1 composition: Twilio's official 2010-04-01 OpenAPI -> supergraph.graphql.
// UPSTREAM_URL: where Twilio's API answers (e.g. the sandbox); TWILIO_SPEC: the path of
// twilio_api_v2010.json from github.com/twilio/twilio-oai (spec/json/); credentials as the
// Twilio SDK names them. tests/perf/test_vs_mesh.py sets all four.
import { defineConfig } from '@graphql-mesh/compose-cli';
import { loadOpenAPISubgraph } from '@omnigraph/openapi';

const endpoint = process.env.UPSTREAM_URL || 'http://127.0.0.1:9000';
const spec = process.env.TWILIO_SPEC;
if (!spec) throw new Error('TWILIO_SPEC must be the path of twilio_api_v2010.json');
const sid = process.env.TWILIO_ACCOUNT_SID || '';
const token = process.env.TWILIO_AUTH_TOKEN || '';
const basic = Buffer.from(`${sid}:${token}`).toString('base64');

export const composeConfig = defineConfig({
  subgraphs: [
    {
      sourceHandler: loadOpenAPISubgraph('Twilio', {
        source: spec,
        endpoint,
        operationHeaders: { Authorization: `Basic ${basic}` },
      }),
    },
  ],
});
