import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ObjectStorage, type ObjectStorageOptions } from '@rehyat/storage';

declare module 'fastify' {
  interface FastifyInstance {
    /** The S3 bucket holding every video's objects (layout: contracts' `storageKeys`). */
    storage: ObjectStorage;
  }
}

/** `storage`: the S3 client of `@rehyat/storage`, closed in `onClose`. */
export const storagePlugin = fp<ObjectStorageOptions>(
  async (app: FastifyInstance, opts) => {
    const storage = new ObjectStorage(opts);
    app.decorate('storage', storage);
    app.addHook('onClose', async () => {
      storage.close();
    });
  },
  { name: 'rehyat-storage', fastify: '5.x' },
);
