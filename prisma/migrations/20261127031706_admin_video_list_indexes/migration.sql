-- DropIndex
DROP INDEX "videos_status_idx";

-- CreateIndex
CREATE INDEX "videos_created_id_idx" ON "videos"("created_at", "id");

-- CreateIndex
CREATE INDEX "videos_status_created_id_idx" ON "videos"("status", "created_at", "id");

