/** The builder's stylesheet, adopted by the widget's shadow root next to the widget's own (a
 * constructable stylesheet: nothing reaches the host document, a strict CSP host works). */
export const BUILDER_CSS =
  // The preview's spotlight and modal backdrop must not stop the author using the page.
  ".s,.o{pointer-events:none}" +
  // A survey's popover preview keeps to the page's corner, beside the panel, as the page does.
  ".B:not(.min):not(.left)~.sv:not(.in){margin-right:364px}.B.left:not(.min)~.sv:not(.in){margin-left:364px}" +
  ".B{z-index:10;position:fixed;top:12px;bottom:12px;right:12px;width:340px;display:flex;flex-direction:column;background:#fff;color:#1f2937;border-radius:12px;box-shadow:0 10px 40px #0005,0 0 0 1px #0002;font:13px/1.4 system-ui,sans-serif;overflow:hidden}" +
  ".B.left{right:auto;left:12px}" +
  ".B.min{bottom:auto}.B.min>:not(header){display:none}" +
  ".B header{display:flex;align-items:center;gap:6px;padding:10px 12px;background:#312e81;color:#fff}" +
  ".B header b{flex:1;font-size:14px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}" +
  ".B header button{background:#fff2;color:#fff;border:0;padding:4px 8px}" +
  ".B .who{padding:6px 12px;background:#eef2ff;color:#3730a3;font-size:12px}" +
  ".B .ro{background:#fef3c7;color:#92400e}" +
  ".B main{flex:1;overflow:auto;padding:10px 12px}" +
  ".B footer{display:flex;gap:8px;padding:10px 12px;border-top:1px solid #0001;align-items:center}" +
  ".B footer .st{flex:1;font-size:12px;color:#4b5563}" +
  ".B .st.err{color:#b91c1c}" +
  ".B button{font:inherit;cursor:pointer;border-radius:6px;border:1px solid #0002;background:#fff;color:inherit;padding:5px 10px}" +
  ".B button.p{background:#4f46e5;border-color:#4f46e5;color:#fff;font-weight:600}" +
  ".B button:disabled{opacity:.5;cursor:default}" +
  ".B button:focus-visible,.B input:focus-visible,.B textarea:focus-visible,.B select:focus-visible{outline:2px solid #4f46e5;outline-offset:1px}" +
  ".B ol{list-style:none;margin:0 0 8px;padding:0}" +
  ".B li{display:flex;gap:4px;align-items:center;padding:4px;border-radius:6px}" +
  ".B li.on{background:#eef2ff;box-shadow:inset 3px 0 #4f46e5}" +
  ".B li>button:first-child{flex:1;text-align:start;border:0;background:none;overflow:hidden}" +
  ".B li small{display:block;color:#6b7280;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}" +
  ".B li .i{border:0;background:none;padding:2px 5px;color:#4b5563}" +
  ".B .add{display:flex;gap:6px;margin-bottom:10px}" +
  ".B label{display:block;margin:8px 0 2px;font-weight:600;font-size:12px;color:#374151}" +
  ".B input,.B textarea,.B select{width:100%;font:inherit;padding:5px 7px;border:1px solid #0003;border-radius:6px;background:#fff;color:inherit}" +
  ".B input[type=checkbox]{width:auto}" +
  ".B textarea{min-height:80px;resize:vertical}" +
  ".B .row{display:flex;gap:8px}.B .row>*{flex:1}" +
  ".B .sel,.tg{display:flex;gap:4px;margin-top:4px;align-items:center;flex-wrap:wrap}" +
  ".B .n{font-size:12px;padding:2px 8px;border-radius:99px;background:#dcfce7;color:#166534}" +
  ".B .n.w{background:#fef3c7;color:#92400e}.B .n.x{background:#fee2e2;color:#991b1b}" +
  ".B .note{margin:8px 0;padding:8px;border-radius:6px;background:#f3f4f6;font-size:12px}" +
  ".po{position:fixed;pointer-events:none;border:2px solid #4f46e5;background:#4f46e522;border-radius:3px;z-index:1}" +
  ".po span{position:absolute;top:-22px;left:-2px;background:#4f46e5;color:#fff;font:11px/18px system-ui,sans-serif;padding:0 6px;border-radius:3px;white-space:nowrap}" +
  ".pb{z-index:11;position:fixed;bottom:16px;left:50%;transform:translateX(-50%);background:#111827;color:#fff;padding:8px 14px;border-radius:99px;font:13px system-ui,sans-serif}";
