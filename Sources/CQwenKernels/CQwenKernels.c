// Umbrella for the header-only module (SwiftPM needs one source file).
