/** Entry of static/milepost/surfaces.js: every kind's module registers itself on import, then
 * the bundle takes over the core's queue. Each helper adds ONE import line here. */
import "./message";
import "./resource_center";
import "./celebration";
import "./banner";
import "./guide";
import "./survey";
import "./present";
import { start } from "./index";

start();
