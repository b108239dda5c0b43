// Starts GraphiQL on the page the gateway served (app/explorer/page.py). A file of its own:
// the page's Content-Security-Policy allows no inline script. What the gateway wants shown
// comes in the container's data-* attributes.
(function () {
  "use strict";
  var container = document.getElementById("graphiql");
  var config = container.dataset;
  // The page is served at the GraphQL endpoint itself (GET /graphql for text/html).
  var endpoint = window.location.origin + window.location.pathname;
  var props = {
    // Subscriptions over graphql-transport-ws at the same path: GraphiQL sends the headers
    // editor's values (Authorization) as the connection_init payload the gateway reads.
    fetcher: GraphiQL.createFetcher({
      url: endpoint,
      subscriptionUrl: endpoint.replace(/^http/, "ws"),
    }),
    isHeadersEditorEnabled: true,
    // An API key typed into the headers editor stays in this tab, not in localStorage.
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: config.tools || true,
    inputValueDeprecation: true,
  };
  if (config.defaultQuery) {
    props.defaultQuery = config.defaultQuery;
  }
  if (config.defaultHeaders) {
    props.defaultHeaders = config.defaultHeaders;
  }
  ReactDOM.createRoot(container).render(React.createElement(GraphiQL, props));
})();
