// node-redis 4 and ioredis 5 are installed under aliases (`redis4`, `ioredis5`); they ship
// their own declarations, which TypeScript finds through the alias's package.json.
export {};
