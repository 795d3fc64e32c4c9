// Fastify 4 is installed under an alias (`fastify4: npm:fastify@^4`); type it with the
// current major's declarations.
declare module 'fastify4' {
  import fastify from 'fastify';
  export default fastify;
}
