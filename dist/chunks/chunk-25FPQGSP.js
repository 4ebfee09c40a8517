import { createRequire as __mmCreateRequire } from 'node:module'; const require = __mmCreateRequire(import.meta.url);
import {
  __esm,
  __export,
  __require
} from "./chunk-TXA32J6B.js";

// lazy:crypto
var crypto_exports = {};
__export(crypto_exports, {
  createHash: () => createHash,
  randomUUID: () => randomUUID
});
var loaded, crypto, createHash, randomUUID;
var init_crypto = __esm({
  "lazy:crypto"() {
    crypto = () => loaded ??= __require("node:crypto");
    createHash = (...a) => crypto().createHash(...a);
    randomUUID = (...a) => crypto().randomUUID(...a);
  }
});

export {
  createHash,
  randomUUID,
  crypto_exports,
  init_crypto
};
