import type { FastifyInstance } from 'fastify';
import { DASHBOARD_CSP, DASHBOARD_HTML } from '../admin/dashboard.js';

/**
 * `GET /admin`: the dashboard page, without authentication (it holds no data; it asks for an
 * admin key and reads `/v1/admin/*` with it).
 */
export async function adminDashboardRoutes(app: FastifyInstance): Promise<void> {
  app.get('/admin', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', DASHBOARD_CSP)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .send(DASHBOARD_HTML),
  );
}
