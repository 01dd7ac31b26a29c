CREATE INDEX `messages_by_author` ON `messages` (`author`,`id`);--> statement-breakpoint
CREATE INDEX `messages_by_sent_at` ON `messages` (`sent_at`);
