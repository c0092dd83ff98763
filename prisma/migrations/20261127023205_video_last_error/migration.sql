-- AlterTable
ALTER TABLE "videos" ADD COLUMN     "last_error_at" TIMESTAMPTZ(3),
ADD COLUMN     "last_error_code" TEXT,
ADD COLUMN     "last_error_message" TEXT;

