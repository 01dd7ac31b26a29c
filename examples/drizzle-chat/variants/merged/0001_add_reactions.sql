ALTER TABLE `messages` ADD `reactions` integer DEFAULT 0 NOT NULL;
