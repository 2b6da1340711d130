CREATE TABLE "users" ("id" serial PRIMARY KEY);
--> statement-breakpoint
CREATE INDEX "users_id" ON "users" ("id");
